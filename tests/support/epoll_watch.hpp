// tests/support/epoll_watch.hpp — which descriptors the epoll sets of this process watch, read
// from /proc/self/fdinfo (Linux): how a test sees whether a socket is in an event loop's reactor.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace twamp_test {

inline std::vector<int> epoll_watched()
{
    std::vector<int> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(e.path(), ec);
        if (ec || target.string().find("eventpoll") == std::string::npos) continue;
        std::ifstream info("/proc/self/fdinfo/" + e.path().filename().string());
        std::string word;
        while (info >> word)
            if (word == "tfd:") {
                int fd = -1;
                info >> fd;
                out.push_back(fd);
            }
    }
    return out;
}

inline bool in_an_epoll_set(int fd)
{
    const auto w = epoll_watched();
    return std::find(w.begin(), w.end(), fd) != w.end();
}

} // namespace twamp_test
