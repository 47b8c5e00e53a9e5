"""What JobsClient and AdminClient share: a channel they may own, and the Calls that every call goes through."""

from __future__ import annotations

import random
from types import TracebackType
from typing import Self

import grpc

from fabric_jobs.client._calls import Calls
from fabric_jobs.client.channel import ChannelOptions, Tls, open_channel
from fabric_jobs.client.retries import RetryBudget, RetryPolicy

DEFAULT_TIMEOUT = 10.0
"""Seconds a call may take, over all its attempts, unless the client or the call says otherwise."""


class ServiceClient:
    """A client over a channel it may own: `connect` opens (and `close` closes) one, the constructor borrows one
    (the in-process channel of a JobServer in the same process, or a channel shared with another client)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.channel = channel
        self._calls = Calls(timeout, retry or RetryPolicy(), budget or RetryBudget(), rng)
        self._owns_channel = False
        self._bind(channel)

    def _bind(self, channel: grpc.aio.Channel) -> None:
        """Make the stubs of the service over `channel`."""
        raise NotImplementedError

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        tls: Tls | None = None,
        options: ChannelOptions = (),
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        rng: random.Random | None = None,
    ) -> Self:
        """A client of the service at `target` (host:port, dns:///name:port, ipv4:addr1,addr2, unix:path), round
        robin across its addresses, over TLS when given `tls`. Call in a running event loop; close when done."""
        client = cls(
            open_channel(target, tls=tls, options=options), timeout=timeout, retry=retry, budget=budget, rng=rng
        )
        client._owns_channel = True
        return client

    @property
    def budget(self) -> RetryBudget:
        return self._calls.budget

    async def close(self) -> None:
        """Close the channel if this client opened it."""
        if self._owns_channel:
            await self.channel.close(grace=None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
