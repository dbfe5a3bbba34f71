#include <cstdio>
int main() {
    std::fprintf(stderr, "mediasim-server: not built yet\n");
    return 2;
}
