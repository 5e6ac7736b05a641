// tests/fuzz/replay_main.cpp — runs a fuzz target over files, without libFuzzer.
//
// Usage: replay FILE_OR_DIR...  Every regular file named (directories: every regular file inside,
// in name order) is passed once to LLVMFuzzerTestOneInput. Used by ctest so that a gcc build
// checks every committed corpus file; a target's invariant failure aborts, failing the test.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool run_file(const std::filesystem::path& p)
{
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot open %s\n", p.string().c_str());
        return false;
    }
    const std::vector<char> raw((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
    // A heap copy of exactly the file's size, as libFuzzer does, so overreads are visible.
    std::vector<std::uint8_t> data(raw.begin(), raw.end());
    LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    std::size_t files = 0;
    bool ok = true;
    for (int i = 1; i < argc; ++i) {
        const std::filesystem::path arg(argv[i]);
        std::error_code ec;
        if (std::filesystem::is_directory(arg, ec)) {
            std::vector<std::filesystem::path> entries;
            for (const auto& e : std::filesystem::directory_iterator(arg))
                if (e.is_regular_file()) entries.push_back(e.path());
            std::sort(entries.begin(), entries.end());
            for (const auto& p : entries) {
                ok = run_file(p) && ok;
                ++files;
            }
        } else if (std::filesystem::is_regular_file(arg, ec)) {
            ok = run_file(arg) && ok;
            ++files;
        } else {
            std::fprintf(stderr, "no such file or directory: %s\n", argv[i]);
            ok = false;
        }
    }
    std::printf("replayed %zu input(s)\n", files);
    if (files == 0) {
        std::fprintf(stderr, "no inputs given\n");
        return 1;
    }
    return ok ? 0 : 1;
}
