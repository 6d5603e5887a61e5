"""The chat room: one lobby of rooms, three front doors, Redis for several servers.

The course's group chat (a nickname, "X joined the chat", "X: text", the
administrator's "管理员消息") made a real service:

* :mod:`ionet.chat.room`      the state: rooms, names, history, rate limits; no IO
* :mod:`ionet.chat.messages`  the JSON objects every door carries, encoded once
* :mod:`ionet.chat.session`   one client's conversation, whatever its door
* :mod:`ionet.chat.tcp`       JSON lines over TCP (the wire protocol is documented there)
* :mod:`ionet.chat.udp`       one datagram per message, with sequence numbers and a heartbeat
* :mod:`ionet.chat.ws`        WebSocket (wsproto), refusing other sites' pages (Origin)
* :mod:`ionet.chat.page`      the web page, a handler for ionet's HTTP server, which hands
  ``/chat/ws`` to the WebSocket door (``ionet chat serve --http-port``, or ``/chat/``
  beside the static files under ``ionet up``)
* :mod:`ionet.chat.bus`       several server processes sharing rooms through Redis
* :mod:`ionet.chat.admin`     announcements from the console or ``ionet chat announce``
* :mod:`ionet.chat.client`    ``ionet chat join``, the terminal client

Engines: the chat runs on thread, gevent and every loop engine (select,
poll, epoll, asyncio, uvloop).  With the fork engine or ``--workers N`` the
connections live in separate processes, so it needs ``--redis``; the
iterative engine serves one connection at a time and is refused.
"""

from ionet.chat.room import ChatError, Lobby
from ionet.chat.service import ChatService

__all__ = ["ChatError", "ChatService", "Lobby"]
