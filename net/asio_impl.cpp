// The one translation unit that compiles Boost.Asio, its SSL support and Boost.Beast.
// Every other file includes only their declarations (see BOOST_*_SEPARATE_COMPILATION).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
