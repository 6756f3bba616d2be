"""Two (or three) in-process devices with real identity keys, their signals passed through a
``Wire`` a test may tamper with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from app.crypto.identity import DeviceIdentity
from app.rtc.call import Call, CallOptions
from app.rtc.signing import Party


class Device:
    def __init__(self, user: str) -> None:
        self.identity = DeviceIdentity.generate()
        self.party = Party(user, self.identity.device_id)


class Wire:
    """Routes ``send`` calls to the recipient's Call.handle; ``tamper`` may rewrite them."""

    def __init__(self, devices: list[Device]) -> None:
        self.devices = devices
        self.calls: dict[Party, Call] = {}
        self.log: list[tuple[Party, Party, str, dict[str, Any]]] = []
        self.tamper: Callable[[Party, Party, str, dict], dict] | None = None
        self.spoof: dict[Party, Party] = {}  # a lying relay: real sender -> claimed sender

    def key_for(self, user_id: str, device_id: str) -> str | None:
        for device in self.devices:
            if device.party == Party(user_id, device_id):
                return device.identity.ed25519
        return None

    def call_for(self, device: Device, call_id: str = "call-0001", *, video=None,
                 **options) -> Call:
        async def send(peer: Party, kind: str, payload: dict[str, Any]) -> None:
            self.log.append((device.party, peer, kind, payload))
            if self.tamper is not None:
                payload = self.tamper(device.party, peer, kind, payload)
            target = self.calls.get(peer)
            if target is not None:
                claimed = self.spoof.get(device.party, device.party)
                asyncio.get_running_loop().create_task(target.handle(claimed, kind, payload))

        call = Call(call_id, device.party, sign=device.identity.sign, key_for=self.key_for,
                    send=send, options=CallOptions(video_tag=len(self.calls) + 1, **options),
                    video=video)
        self.calls[device.party] = call
        return call


@pytest.fixture
def devices():
    return [Device("@alice"), Device("@bob"), Device("@carol")]


@pytest.fixture
def wire(devices):
    return Wire(devices)
