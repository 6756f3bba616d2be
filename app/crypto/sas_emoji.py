"""The 64 SAS emoji and their English names, in the order of the Matrix specification.

Public data (Matrix spec, "SAS method: emoji"): index i is the 6-bit value the SAS bytes give.
Using the same table as Matrix clients lets people reuse what they know from them.
"""

from __future__ import annotations

SAS_EMOJI: tuple[tuple[str, str], ...] = (
    ("\U0001f436", "Dog"), ("\U0001f431", "Cat"), ("\U0001f981", "Lion"),
    ("\U0001f40e", "Horse"), ("\U0001f984", "Unicorn"), ("\U0001f437", "Pig"),
    ("\U0001f418", "Elephant"), ("\U0001f430", "Rabbit"), ("\U0001f43c", "Panda"),
    ("\U0001f413", "Rooster"), ("\U0001f427", "Penguin"), ("\U0001f422", "Turtle"),
    ("\U0001f41f", "Fish"), ("\U0001f419", "Octopus"), ("\U0001f98b", "Butterfly"),
    ("\U0001f337", "Flower"), ("\U0001f333", "Tree"), ("\U0001f335", "Cactus"),
    ("\U0001f344", "Mushroom"), ("\U0001f30f", "Globe"), ("\U0001f319", "Moon"),
    ("\u2601\ufe0f", "Cloud"), ("\U0001f525", "Fire"), ("\U0001f34c", "Banana"),
    ("\U0001f34e", "Apple"), ("\U0001f353", "Strawberry"), ("\U0001f33d", "Corn"),
    ("\U0001f355", "Pizza"), ("\U0001f382", "Cake"), ("\u2764\ufe0f", "Heart"),
    ("\U0001f600", "Smiley"), ("\U0001f916", "Robot"), ("\U0001f3a9", "Hat"),
    ("\U0001f453", "Glasses"), ("\U0001f527", "Spanner"), ("\U0001f385", "Santa"),
    ("\U0001f44d", "Thumbs Up"), ("\u2602\ufe0f", "Umbrella"), ("\u231b", "Hourglass"),
    ("\u23f0", "Clock"), ("\U0001f381", "Gift"), ("\U0001f4a1", "Light Bulb"),
    ("\U0001f4d5", "Book"), ("\u270f\ufe0f", "Pencil"), ("\U0001f4ce", "Paperclip"),
    ("\u2702\ufe0f", "Scissors"), ("\U0001f512", "Lock"), ("\U0001f511", "Key"),
    ("\U0001f528", "Hammer"), ("\u260e\ufe0f", "Telephone"), ("\U0001f3c1", "Flag"),
    ("\U0001f682", "Train"), ("\U0001f6b2", "Bicycle"), ("\u2708\ufe0f", "Aeroplane"),
    ("\U0001f680", "Rocket"), ("\U0001f3c6", "Trophy"), ("\u26bd", "Ball"),
    ("\U0001f3b8", "Guitar"), ("\U0001f3ba", "Trumpet"), ("\U0001f514", "Bell"),
    ("\u2693", "Anchor"), ("\U0001f3a7", "Headphones"), ("\U0001f4c1", "Folder"),
    ("\U0001f4cc", "Pin"),
)

if len(SAS_EMOJI) != 64:  # a broken table must fail at import, not while a user compares codes
    raise RuntimeError("SAS emoji table must have 64 entries")
