#include "simulator/xml.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <optional>

namespace mediasim::sim::xml {

const std::string* Element::attribute(std::string_view attr) const {
    for (const auto& [k, v] : attributes)
        if (k == attr) return &v;
    return nullptr;
}

namespace {

void append_text(const Element& e, std::string& out) {
    for (const auto& c : e.children) {
        if (const auto* s = std::get_if<std::string>(&c))
            out += *s;
        else
            append_text(std::get<Element>(c), out);
    }
}

bool is_name_start(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' ||
           static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) {
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void append_utf8(std::uint32_t cp, std::string& out) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

class Parser {
  public:
    Parser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

    core::Result<Element> document() {
        if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // UTF-8 byte order mark
        if (s_.substr(pos_, 5) == "<?xml") {
            if (!declaration()) return error_;
        }
        if (!misc()) return error_;
        if (at_end()) return fail(pos_, "the document is empty (expected a root element)");
        if (s_.substr(pos_, 9) == "<!DOCTYPE")
            return fail(pos_, "DOCTYPE declarations are not supported in TwiML");
        if (peek() != '<') return fail(pos_, "text before the root element");
        Element root;
        if (!element(root, 0)) return error_;
        if (!misc()) return error_;
        if (!at_end()) return fail(pos_, "content after the root element");
        return root;
    }

  private:
    bool at_end() const { return pos_ >= s_.size(); }
    char peek(std::size_t ahead = 0) const {
        return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0';
    }
    bool starts(std::string_view w) const { return s_.substr(pos_, w.size()) == w; }

    std::pair<int, int> line_col(std::size_t at) const {
        int line = 1, col = 1;
        for (std::size_t i = 0; i < at && i < s_.size(); ++i) {
            if (s_[i] == '\n') {
                ++line;
                col = 1;
            } else if ((static_cast<unsigned char>(s_[i]) & 0xC0) != 0x80) {
                ++col;  // count characters, not UTF-8 continuation bytes
            }
        }
        return {line, col};
    }

    core::Diagnostic fail(std::size_t at, std::string message) {
        core::Diagnostic d;
        d.file = std::string(name_);
        auto [l, c] = line_col(at);
        d.line = l;
        d.column = c;
        d.message = std::move(message);
        error_ = d;
        return d;
    }
    bool failed(std::size_t at, std::string message) {
        fail(at, std::move(message));
        return false;
    }

    void skip_space() {
        while (!at_end() && is_space(peek())) ++pos_;
    }

    std::string describe_here() const {
        if (at_end()) return "the end of the document";
        char c = peek();
        if (c == '\n') return "a line break";
        return fmt::format("'{}'", c);
    }

    bool declaration() {
        std::size_t start = pos_;
        auto end = s_.find("?>", pos_);
        if (end == std::string_view::npos)
            return failed(start, "the XML declaration is not closed with \"?>\"");
        std::string_view body = s_.substr(pos_ + 5, end - pos_ - 5);
        if (!body.empty() && !is_space(body[0]))
            return failed(start, "expected a space after \"<?xml\"");
        if (body.find("version") == std::string_view::npos)
            return failed(start, "the XML declaration has no version");
        pos_ = end + 2;
        return true;
    }

    // Whitespace, comments and processing instructions between top-level parts.
    bool misc() {
        for (;;) {
            skip_space();
            if (starts("<!--")) {
                if (!comment()) return false;
            } else if (starts("<?")) {
                if (starts("<?xml") && (is_space(peek(5)) || peek(5) == '?'))
                    return failed(pos_, "the XML declaration must come first in the document");
                if (!pi()) return false;
            } else {
                return true;
            }
        }
    }

    bool comment() {
        std::size_t start = pos_;
        pos_ += 4;
        auto end = s_.find("--", pos_);
        if (end == std::string_view::npos)
            return failed(start, "the comment is not closed with \"-->\"");
        if (s_.substr(end, 3) != "-->")
            return failed(end, "\"--\" is not allowed inside a comment");
        pos_ = end + 3;
        return true;
    }

    bool pi() {
        std::size_t start = pos_;
        auto end = s_.find("?>", pos_);
        if (end == std::string_view::npos)
            return failed(start, "the processing instruction is not closed with \"?>\"");
        pos_ = end + 2;
        return true;
    }

    std::optional<std::string> name() {
        if (at_end() || !is_name_start(peek())) return std::nullopt;
        std::size_t start = pos_;
        while (!at_end() && is_name_char(peek())) ++pos_;
        return std::string(s_.substr(start, pos_ - start));
    }

    // At '&': decodes one reference into out.
    bool reference(std::string& out) {
        std::size_t start = pos_;
        auto semi = s_.find(';', pos_);
        if (semi == std::string_view::npos || semi - pos_ > 12)
            return failed(start, "'&' must start an entity such as &amp; (write & as &amp;)");
        std::string_view ref = s_.substr(pos_ + 1, semi - pos_ - 1);
        if (ref == "amp")
            out += '&';
        else if (ref == "lt")
            out += '<';
        else if (ref == "gt")
            out += '>';
        else if (ref == "quot")
            out += '"';
        else if (ref == "apos")
            out += '\'';
        else if (!ref.empty() && ref[0] == '#') {
            bool hex = ref.size() > 1 && ref[1] == 'x';
            std::string_view digits = ref.substr(hex ? 2 : 1);
            if (digits.empty())
                return failed(start, fmt::format("empty character reference &{};", ref));
            std::uint32_t cp = 0;
            for (char c : digits) {
                int d;
                if (c >= '0' && c <= '9')
                    d = c - '0';
                else if (hex && c >= 'a' && c <= 'f')
                    d = c - 'a' + 10;
                else if (hex && c >= 'A' && c <= 'F')
                    d = c - 'A' + 10;
                else
                    return failed(start, fmt::format("invalid character reference &{};", ref));
                cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
                if (cp > 0x10FFFF)
                    return failed(start,
                                  fmt::format("character reference &{}; is beyond Unicode", ref));
            }
            bool ok = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
                      (cp >= 0xE000 && cp <= 0xFFFD) || cp >= 0x10000;
            if (!ok)
                return failed(start,
                              fmt::format("character reference &{}; is not an XML character", ref));
            append_utf8(cp, out);
        } else {
            return failed(start, fmt::format("unknown entity &{}; (XML knows &amp; &lt; &gt; "
                                             "&quot; &apos; and &#N;)",
                                             ref));
        }
        pos_ = semi + 1;
        return true;
    }

    bool attribute_value(std::string& out) {
        char q = peek();
        if (q != '"' && q != '\'')
            return failed(
                pos_, fmt::format("expected a quoted attribute value, found {}", describe_here()));
        std::size_t start = pos_;
        ++pos_;
        for (;;) {
            if (at_end()) return failed(start, "the attribute value is not closed");
            char c = peek();
            if (c == q) {
                ++pos_;
                return true;
            }
            if (c == '<')
                return failed(pos_, "'<' is not allowed in an attribute value (write &lt;)");
            if (c == '&') {
                if (!reference(out)) return false;
                continue;
            }
            // Attribute-value normalisation: whitespace characters become spaces.
            out += (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
            ++pos_;
        }
    }

    bool element(Element& e, int depth) {
        if (depth > 64) return failed(pos_, "elements are nested more than 64 deep");
        std::size_t start = pos_;
        auto [l, c] = line_col(start);
        e.line = l;
        e.column = c;
        ++pos_;  // '<'
        auto n = name();
        if (!n)
            return failed(pos_, fmt::format("expected an element name, found {}", describe_here()));
        e.name = std::move(*n);
        // Attributes.
        for (;;) {
            std::size_t before = pos_;
            skip_space();
            if (starts("/>")) {
                pos_ += 2;
                return true;
            }
            if (peek() == '>') {
                ++pos_;
                break;
            }
            if (at_end()) return failed(start, fmt::format("the tag <{}> is not closed", e.name));
            if (before == pos_)
                return failed(pos_,
                              fmt::format("expected whitespace, '>' or \"/>\" in <{}>, found {}",
                                          e.name, describe_here()));
            std::size_t attr_at = pos_;
            auto an = name();
            if (!an)
                return failed(pos_, fmt::format("expected an attribute name in <{}>, found {}",
                                                e.name, describe_here()));
            if (e.attribute(*an))
                return failed(attr_at,
                              fmt::format("attribute \"{}\" appears twice in <{}>", *an, e.name));
            skip_space();
            if (peek() != '=')
                return failed(pos_, fmt::format("expected '=' after attribute \"{}\", found {}",
                                                *an, describe_here()));
            ++pos_;
            skip_space();
            std::string value;
            if (!attribute_value(value)) return false;
            e.attributes.emplace_back(std::move(*an), std::move(value));
        }
        // Content.
        std::string text;
        auto flush_text = [&] {
            if (!text.empty()) {
                e.children.emplace_back(std::move(text));
                text.clear();
            }
        };
        for (;;) {
            if (at_end())
                return failed(start,
                              fmt::format("<{}> is not closed (expected </{}>)", e.name, e.name));
            char ch = peek();
            if (ch == '<') {
                if (starts("</")) {
                    std::size_t end_at = pos_;
                    pos_ += 2;
                    auto en = name();
                    if (!en || *en != e.name)
                        return failed(
                            end_at,
                            fmt::format("expected </{}> (opened at {}:{}), found </{}>", e.name,
                                        e.line, e.column, en ? *en : std::string()));
                    skip_space();
                    if (peek() != '>')
                        return failed(pos_, fmt::format("expected '>' to end </{}>, found {}",
                                                        e.name, describe_here()));
                    ++pos_;
                    flush_text();
                    return true;
                }
                if (starts("<!--")) {
                    if (!comment()) return false;
                    continue;
                }
                if (starts("<![CDATA[")) {
                    std::size_t cd = pos_;
                    auto end = s_.find("]]>", pos_ + 9);
                    if (end == std::string_view::npos)
                        return failed(cd, "the CDATA section is not closed with \"]]>\"");
                    text.append(s_.substr(pos_ + 9, end - pos_ - 9));
                    pos_ = end + 3;
                    continue;
                }
                if (starts("<!"))
                    return failed(pos_, "declarations are not allowed inside elements");
                if (starts("<?")) {
                    if (!pi()) return false;
                    continue;
                }
                flush_text();
                Element child;
                if (!element(child, depth + 1)) return false;
                e.children.emplace_back(std::move(child));
                continue;
            }
            if (ch == '&') {
                if (!reference(text)) return false;
                continue;
            }
            if (ch == '>' && pos_ >= 2 && s_.substr(pos_ - 2, 2) == "]]")
                return failed(pos_ - 2, "\"]]>\" is not allowed in text");
            text += ch;
            ++pos_;
        }
    }

    std::string_view s_;
    std::string_view name_;
    std::size_t pos_ = 0;
    core::Diagnostic error_;
};

}  // namespace

std::string Element::text() const {
    std::string out;
    append_text(*this, out);
    return out;
}

std::vector<const Element*> Element::elements() const {
    std::vector<const Element*> out;
    for (const auto& c : children)
        if (const auto* e = std::get_if<Element>(&c)) out.push_back(e);
    return out;
}

core::Result<Element> parse(std::string_view text, std::string_view name) {
    return Parser(text, name).document();
}

}  // namespace mediasim::sim::xml
