"""Request bodies for rooms, membership, grants and break-glass (validated, bounded)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Ciphertext of the room's linked-patient record, as the client's encryption prints it.
LINKED_PATIENT_MAX_CHARS = 16_384
USER_REF_MAX_CHARS = 128


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateRoom(_Strict):
    linked_patient: str | None = Field(default=None, min_length=1,
                                       max_length=LINKED_PATIENT_MAX_CHARS)


class LinkedPatient(_Strict):
    linked_patient: str | None = Field(min_length=1, max_length=LINKED_PATIENT_MAX_CHARS)


class UserRef(_Strict):
    """Exactly one of ``user_id`` and ``username``."""

    user_id: str | None = Field(default=None, min_length=1, max_length=USER_REF_MAX_CHARS)
    username: str | None = Field(default=None, min_length=1, max_length=USER_REF_MAX_CHARS)

    @model_validator(mode="after")
    def _one_of(self) -> UserRef:
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id and username")
        return self


class Invite(UserRef):
    role: Literal["member", "observer"] = "member"
    expires_ms: int | None = Field(default=None, gt=0, lt=2**53)


class BreakGlass(_Strict):
    # Optional here so that a missing reason gets the specific 'reason_required' refusal.
    reason: str | None = Field(default=None, max_length=4096)


class Review(_Strict):
    """An auditor's break-glass sign-off: the decision, and an optional note."""

    decision: Literal["approved", "flagged"]
    note: str | None = Field(default=None, max_length=500)
