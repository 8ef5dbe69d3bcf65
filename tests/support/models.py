"""Pydantic models shared by the tool and client-library tests: a nested model (its schema
uses $defs/$ref), and the ask that fills it."""

from __future__ import annotations

from pydantic import BaseModel


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    """A person and where they live."""

    name: str
    age: int
    address: Address


PERSON_ASK = "Record Ada Lovelace, 36, who lives at 12 St James's Square, London."
