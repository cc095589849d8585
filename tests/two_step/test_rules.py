"""Time-based one-time passwords, checked against RFC 6238's own test values."""

from __future__ import annotations

from userdesk.two_step import rules

# RFC 6238, appendix B: the SHA-1 key "12345678901234567890", 8-digit codes; ours are the
# last six digits of each.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = {59: "94287082", 1111111109: "07081804", 1234567890: "89005924"}


def test_codes_are_those_of_rfc_6238() -> None:
    for unix, code in RFC_VECTORS.items():
        assert rules.code_at(RFC_SECRET, rules.step_of(unix)) == code[-6:]


def test_a_code_of_the_neighbouring_step_is_taken_and_a_used_one_is_not() -> None:
    now = rules.step_of(1234567890)
    before = rules.code_at(RFC_SECRET, now - 1)
    assert rules.matching_step(RFC_SECRET, before, now_step=now, after_step=None) == now - 1
    assert rules.matching_step(RFC_SECRET, before, now_step=now, after_step=now - 1) is None
    far = rules.code_at(RFC_SECRET, now - 3)
    assert rules.matching_step(RFC_SECRET, far, now_step=now, after_step=None) is None


def test_typed_spaces_are_ignored_and_other_text_is_no_code() -> None:
    now = rules.step_of(59)
    assert rules.matching_step(RFC_SECRET, "287 082", now_step=now, after_step=None) == now
    wide = "".join(chr(0xFF10 + int(d)) for d in "287082")  # full-width digits: no code
    for typed in ("", "28708", "2870822", "abcdef", "\x00" * 6, wide):
        assert rules.matching_step(RFC_SECRET, typed, now_step=now, after_step=None) is None


def test_new_secrets_and_recovery_codes_are_random_and_well_formed() -> None:
    secrets = {rules.new_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(s) == 32 for s in secrets)  # 160 bits in base32
    codes = rules.new_recovery_codes()
    assert len(set(codes)) == rules.RECOVERY_CODES
    assert all(rules.looks_like_recovery_code(c) for c in codes)
    assert rules.recovery_code_hash(codes[0].lower()) == rules.recovery_code_hash(codes[0])


def test_the_provisioning_uri_names_the_issuer_and_account() -> None:
    uri = rules.provisioning_uri("ABC", account="ann@acme.test", issuer="Acme Inc")
    assert uri.startswith("otpauth://totp/Acme%20Inc:ann@acme.test?")
    assert "secret=ABC" in uri
    assert "issuer=Acme+Inc" in uri
