// Fuzz target: STAMP TLV marking (test_packet.hpp mark_reflected_tlvs) and the Extra Padding
// writer.
//
// Properties: only the U and M flag bits of TLV Flags octets change; the walk is idempotent
// (same count, no further change); an Extra Padding TLV the sender writes is never flagged.
#include "fuzz_common.hpp"

#include "twamp/test_packet.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

using namespace twamp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::vector<std::uint8_t> orig(data, data + size);
    std::vector<std::uint8_t> tlvs = orig;
    const std::size_t count = mark_reflected_tlvs(tlvs);
    FUZZ_CHECK(count <= size / kStampTlvHeaderLen);

    // Walk the original independently: headers at the offsets the TLV lengths give.
    std::size_t pos = 0, seen = 0;
    std::vector<bool> header(size, false);
    while (size - pos >= kStampTlvHeaderLen && orig[pos + 1] != 0) {
        header[pos] = true;
        ++seen;
        const std::size_t len = wire::load16(&orig[pos + 2]);
        const bool fits = len <= size - pos - kStampTlvHeaderLen;
        const std::uint8_t want =
            orig[pos] |
            (fits ? (orig[pos + 1] == stamp_tlv::kTypeExtraPadding ? 0 : stamp_tlv::kFlagU)
                  : stamp_tlv::kFlagM);
        FUZZ_CHECK(tlvs[pos] == want);
        if (!fits) break;
        pos += kStampTlvHeaderLen + len;
    }
    FUZZ_CHECK(seen == count);
    for (std::size_t i = 0; i < size; ++i)
        FUZZ_CHECK(header[i] || tlvs[i] == orig[i]);

    // Idempotent: marking again changes nothing.
    std::vector<std::uint8_t> again = tlvs;
    FUZZ_CHECK(mark_reflected_tlvs(again) == count);
    FUZZ_CHECK(again == tlvs);

    // The writer: one Extra Padding TLV filling the span is well formed.
    std::vector<std::uint8_t> pad(size);
    const auto ec = write_stamp_extra_padding(pad);
    FUZZ_CHECK(!ec == (size >= kStampTlvHeaderLen && size - kStampTlvHeaderLen <= 0xFFFF));
    if (!ec) {
        FUZZ_CHECK(mark_reflected_tlvs(pad) == 1);
        FUZZ_CHECK(pad[0] == 0 && pad[1] == stamp_tlv::kTypeExtraPadding);
        FUZZ_CHECK(wire::load16(&pad[2]) == size - kStampTlvHeaderLen);
    }
    return 0;
}
