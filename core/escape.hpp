// Escaping text for XML and HTML (element content and attribute values alike): TwiML that the
// reference server writes and the HTML report.
#pragma once

#include <string>
#include <string_view>

namespace mediasim::core {

// & < > " ' → &amp; &lt; &gt; &quot; &apos; (valid in XML and in HTML5).
std::string xml_escape(std::string_view text);

}  // namespace mediasim::core
