import re

from userdesk.auth.secrets import TOKEN_BYTES, new_token, new_tokens


def test_tokens_made_in_a_batch_are_made_as_one_by_one() -> None:
    """An import's invitations take their tokens from new_tokens: each as long, of the same
    URL-safe alphabet, as new_token's, and all different."""
    tokens = new_tokens(500)
    assert len(tokens) == 500
    assert len(set(tokens)) == 500
    shape = re.compile(r"[A-Za-z0-9_-]+")
    assert {len(token) for token in tokens} == {len(new_token())} == {43}
    assert all(shape.fullmatch(token) for token in tokens)
    assert len(new_tokens(1)[0]) * 6 // 8 == TOKEN_BYTES
    assert new_tokens(0) == []
