"""Why an upstream request gave no usable answer.

::

    HTTPError
    ├── ConnectError          no connection (refused, DNS, TLS, the proxy)
    ├── TimeoutException
    │   ├── ConnectTimeout    connecting, or waiting for a free connection
    │   └── ReadTimeout       the upstream went quiet mid-answer
    ├── RemoteProtocolError   a malformed answer, or one cut short
    ├── DecodingError         a body in an encoding Orchard did not ask for
    ├── TooManyRedirects
    ├── InvalidRequest        a URL or header that cannot be sent
    ├── BlockedAddress        a hop the source's LinkRule does not allow
    └── ClientClosed

Callers catch ``HTTPError``; its class name is what they log and show.
"""

from __future__ import annotations


class HTTPError(Exception):
    """No usable answer from an upstream (the subclasses say why)."""


class ConnectError(HTTPError):
    pass


class TimeoutException(HTTPError):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class RemoteProtocolError(HTTPError):
    """A malformed answer, or the connection closed in the middle of one."""


class DecodingError(HTTPError):
    pass


class TooManyRedirects(HTTPError):
    pass


class InvalidRequest(HTTPError):
    """A URL or header that cannot be sent (e.g. a line break in a value)."""


class BlockedAddress(HTTPError):
    """A URL (a link or a redirect) the upstream may not send Orchard to:
    another host than the allowed ones, or one with a non-public address."""


class ClientClosed(HTTPError):
    pass
