#include "core/form.hpp"
