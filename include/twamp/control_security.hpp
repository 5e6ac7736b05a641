// twamp/control_security.hpp — shared secrets and the keyed control-channel policy.
//
// RFC 4656 §3.1–3.2 (KeyID, Token, PBKDF2, the CBC chains and HMACs that RFC 5357 §3 reuses),
// RFC 5618 (mixed mode: protected control, open test packets). keyed_security satisfies
// control::control_security_policy and adds the key set-up hooks the state machines call:
// client_setup() (KeyID and Token into the Set-Up-Response), server_iv() (the client's inbound
// chain) and server_setup() (the server's check of KeyID and Token). Unauthenticated mode passes
// everything through, so one policy serves every mode a key file allows.
//
// Key files use the perfSONAR pfs format, one key per line: `KEYID HEXSECRET`; '#' starts a
// comment. Secrets are wiped when the store goes away and never printed.
#pragma once

#include "twamp/control.hpp"
#include "twamp/crypto.hpp"

#include <cctype>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace twamp::control {

class key_store {
public:
    key_store() = default;
    key_store(const key_store&) = delete;
    key_store& operator=(const key_store&) = delete;
    ~key_store()
    {
        for (auto& k : keys_)
            wipe_bytes(k.second);
    }

    // Adds a key; the KeyID is at most 80 octets (RFC 4656 §3.1).
    bool add(std::string id, std::vector<std::uint8_t> secret)
    {
        if (id.empty() || id.size() > 80 || secret.empty()) return false;
        keys_.emplace_back(std::move(id), std::move(secret));
        return true;
    }

    // Parses pfs-format text. On error returns false and says which line (never the secret).
    bool parse(std::string_view text, std::string& error)
    {
        std::size_t line_no = 0;
        while (!text.empty()) {
            ++line_no;
            const auto nl = text.find('\n');
            std::string_view line = text.substr(0, nl);
            text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
            if (const auto hash = line.find('#'); hash != std::string_view::npos)
                line = line.substr(0, hash);
            auto trim = [](std::string_view v) {
                while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front())))
                    v.remove_prefix(1);
                while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back())))
                    v.remove_suffix(1);
                return v;
            };
            line = trim(line);
            if (line.empty()) continue;
            std::size_t sp = 0;
            while (sp < line.size() && !std::isspace(static_cast<unsigned char>(line[sp])))
                ++sp;
            const std::string_view id = line.substr(0, sp);
            const std::string_view hex = trim(line.substr(sp));
            std::vector<std::uint8_t> secret;
            bool ok = !hex.empty() && hex.size() % 2 == 0 &&
                      hex.find_first_of(" \t") == std::string_view::npos;
            for (std::size_t i = 0; ok && i < hex.size(); i += 2) {
                auto val = [](char c) -> int {
                    if (c >= '0' && c <= '9') return c - '0';
                    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
                    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
                    return -1;
                };
                const int hi = val(hex[i]), lo = val(hex[i + 1]);
                if (hi < 0 || lo < 0)
                    ok = false;
                else
                    secret.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
            }
            if (!ok || !add(std::string(id), std::move(secret))) {
                wipe_bytes(secret);
                error = "line " + std::to_string(line_no) +
                        ": expected 'KEYID HEXSECRET' (KeyID of 1-80 octets)";
                return false;
            }
        }
        if (keys_.empty()) {
            error = "no keys";
            return false;
        }
        return true;
    }

    bool load(const std::string& path, std::string& error)
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            error = "cannot read the key file '" + path + "'";
            return false;
        }
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const bool ok = parse(text, error);
        wipe_bytes(std::span(reinterpret_cast<std::uint8_t*>(text.data()), text.size()));
        if (!ok) error = "key file '" + path + "': " + error;
        return ok;
    }

    const std::vector<std::uint8_t>* find(std::string_view id) const
    {
        for (const auto& k : keys_)
            if (k.first == id) return &k.second;
        return nullptr;
    }
    const std::vector<std::pair<std::string, std::vector<std::uint8_t>>>& keys() const noexcept
    {
        return keys_;
    }

private:
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> keys_;
};

// The KeyID field: UTF-8, zero-padded to 80 octets.
inline std::string key_id_from_field(std::span<const std::uint8_t, 80> f)
{
    std::string id;
    for (auto b : f) {
        if (b == 0) break;
        id += static_cast<char>(b);
    }
    return id;
}

template <crypto_policy C> class keyed_security {
public:
    using crypto_type = C;
    static constexpr std::uint32_t security_modes =
        mode::unauthenticated | mode::authenticated | mode::encrypted | mode::mixed;

    // No keys: only unauthenticated mode can succeed.
    keyed_security() = default;

    // Client side: the KeyID and secret it authenticates with.
    static keyed_security client(std::string key_id, std::shared_ptr<const key_store> keys)
    {
        keyed_security s;
        s.key_id_ = std::move(key_id);
        s.keys_ = std::move(keys);
        return s;
    }
    // Server side: the keys it accepts.
    static keyed_security server(std::shared_ptr<const key_store> keys)
    {
        keyed_security s;
        s.keys_ = std::move(keys);
        return s;
    }

    void select_mode(std::uint32_t m) noexcept
    {
        mode_ = m;
        protected_ = (m & (mode::authenticated | mode::encrypted | mode::mixed)) != 0;
    }
    std::uint32_t selected_mode() const noexcept { return mode_; }

    std::error_code seal(std::span<std::uint8_t> blocks, bool ends_with_hmac)
    {
        if (!protected_) return {};
        return ends_with_hmac ? tx_.protect(blocks) : tx_.encrypt_blocks(blocks);
    }
    std::error_code open_block(std::span<std::uint8_t, kBlockSize> block)
    {
        if (!protected_) return {};
        return rx_.decrypt_blocks(block);
    }
    std::error_code verify(std::span<std::uint8_t, kBlockSize> hmac)
    {
        if (!protected_) return {};
        return rx_.verify(hmac);
    }

    // --- client hooks
    std::error_code client_setup(const server_greeting& g, setup_response& sr)
    {
        const auto* secret = keys_ ? keys_->find(key_id_) : nullptr;
        if (!secret || key_id_.size() > sr.key_id.size()) return errc::auth_failed;
        sr.key_id = {};
        std::copy(key_id_.begin(), key_id_.end(), sr.key_id.begin());
        // Client-IV from the same CSPRNG as the session keys, whatever the state machine's
        // random_source put there (RFC 4656 §3.1: it must be unique).
        if (auto ec = C::random_bytes(sr.client_iv)) return ec;
        aes_key k;
        if (auto ec = derive_shared_key<C>(*secret, g.salt, g.count, k)) return ec;
        if (auto ec = generate_session_keys<C>(aes_sk_, hmac_sk_)) return ec;
        if (auto ec = make_token<C>(k, g.challenge, aes_sk_, hmac_sk_, sr.token)) return ec;
        return tx_.init(aes_sk_.span(), hmac_sk_.span(), sr.client_iv);
    }
    std::error_code server_iv(const std::array<std::uint8_t, 16>& iv)
    {
        return rx_.init(aes_sk_.span(), hmac_sk_.span(), iv);
    }

    // --- server hook: Accept 0, or 1 for an unknown KeyID or a wrong secret. Both cost the
    // same work (PBKDF2 and the Token check run with a stand-in secret), so timing does not tell
    // which KeyIDs exist.
    accept_code server_setup(const server_greeting& g, const setup_response& sr,
                             const std::array<std::uint8_t, 16>& server_iv)
    {
        const std::string id = key_id_from_field(sr.key_id);
        const auto* secret = keys_ ? keys_->find(id) : nullptr;
        static const std::vector<std::uint8_t> stand_in(32, 0xA5);
        aes_key k;
        if (derive_shared_key<C>(secret ? *secret : stand_in, g.salt, g.count, k))
            return accept_code::internal_error;
        token_contents t;
        const auto ec = verify_token<C>(k, sr.token, g.challenge, t);
        if (ec || !secret) return accept_code::failure;
        aes_sk_ = t.aes_sk;
        hmac_sk_ = t.hmac_sk;
        key_id_ = id;
        if (rx_.init(aes_sk_.span(), hmac_sk_.span(), sr.client_iv))
            return accept_code::internal_error;
        if (tx_.init(aes_sk_.span(), hmac_sk_.span(), server_iv))
            return accept_code::internal_error;
        return accept_code::ok;
    }

    // The session keys, for the per-SID test keys (RFC 4656 §4.1.2 / §6).
    const aes_key& aes_session_key() const noexcept { return aes_sk_; }
    const hmac_key& hmac_session_key() const noexcept { return hmac_sk_; }
    const std::string& key_id() const noexcept { return key_id_; }

private:
    std::string key_id_;
    std::shared_ptr<const key_store> keys_;
    std::uint32_t mode_ = 0;
    bool protected_ = false;
    aes_key aes_sk_;
    hmac_key hmac_sk_;
    control_cipher<C> tx_;
    control_cipher<C> rx_;
};

} // namespace twamp::control
