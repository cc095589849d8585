from userdesk.auth.secrets import hash_password, hash_token, new_token, verify_password


def test_passwords_are_hashed_with_argon2id_and_verified() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse battery!")


def test_no_stored_hash_never_verifies() -> None:
    assert not verify_password(None, "anything at all")


def test_tokens_carry_at_least_128_random_bits_and_are_stored_as_sha256() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 for t in tokens)  # 32 bytes in URL-safe base64
    token = next(iter(tokens))
    assert len(hash_token(token)) == 64
    assert hash_token(token) != token
