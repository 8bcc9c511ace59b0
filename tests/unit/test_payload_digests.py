"""Candidate payload digests kept with a preview: keyed with the integrity key when there is one."""

from __future__ import annotations

from omni_secrets.domain.integrity import IntegrityKeyring
from omni_secrets.domain.values import SecretValue
from omni_secrets.service.rotation.aliases import PayloadDigests

OLD_KEY = b"fake-integrity-key-old-0123456789abcdef"
NEW_KEY = b"fake-integrity-key-new-0123456789abcdef"
VALUE = SecretValue("fake-candidate-api-secret")


def test_keyed_digest_matches_its_value_only_and_never_holds_it() -> None:
    digests = PayloadDigests(IntegrityKeyring([NEW_KEY]))
    digest = digests.of("preview-1", VALUE)
    assert "fake-candidate" not in digest
    assert digests.matches("preview-1", VALUE, digest)
    assert not digests.matches("preview-1", SecretValue("fake-other-value"), digest)
    assert not digests.matches("preview-2", VALUE, digest)


def test_keyed_digest_cannot_be_recomputed_without_the_key() -> None:
    keyed = PayloadDigests(IntegrityKeyring([NEW_KEY])).of("preview-1", VALUE)
    unkeyed = PayloadDigests().of("preview-1", VALUE)
    other_key = PayloadDigests(IntegrityKeyring([OLD_KEY])).of("preview-1", VALUE)
    assert keyed != unkeyed
    assert keyed.split(":", 1)[1] != other_key.split(":", 1)[1]
    assert not PayloadDigests(IntegrityKeyring([OLD_KEY])).matches("preview-1", VALUE, keyed)


def test_a_preview_digested_before_a_key_change_still_verifies_after_it() -> None:
    before = PayloadDigests(IntegrityKeyring([OLD_KEY])).of("preview-1", VALUE)
    after = PayloadDigests(IntegrityKeyring([NEW_KEY, OLD_KEY]))
    assert after.matches("preview-1", VALUE, before)


def test_without_keys_the_digest_is_keyed_by_the_preview() -> None:
    digests = PayloadDigests()
    assert digests.matches("preview-1", VALUE, digests.of("preview-1", VALUE))
    assert digests.of("preview-1", VALUE) != digests.of("preview-2", VALUE)
