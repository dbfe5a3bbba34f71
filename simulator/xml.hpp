// A small strict XML parser for the TwiML subset: elements, attributes (both quote styles),
// text, the five named entities and numeric character references, comments, the XML
// declaration and other processing instructions, CDATA. No DTDs, no namespaces processing.
// Errors carry line:column of the offending character.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.hpp"

namespace mediasim::sim::xml {

struct Element;

// A child node: text (entities decoded, CDATA included verbatim) or an element.
using Node = std::variant<std::string, Element>;

struct Element {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attributes;  // in document order
    std::vector<Node> children;
    int line = 0;  // where the start tag's '<' is, 1-based
    int column = 0;

    const std::string* attribute(std::string_view name) const;  // nullptr when absent
    // All text below this element (descendants' text included), in document order.
    std::string text() const;
    // Child elements only, in order.
    std::vector<const Element*> elements() const;
};

// Parses a whole document and returns its root element. `name` goes into Diagnostic::file.
core::Result<Element> parse(std::string_view text, std::string_view name = "<xml>");

}  // namespace mediasim::sim::xml
