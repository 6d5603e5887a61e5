"""The online dictionary: accounts, look-ups with suggestions, history.

One :class:`~ionet.dict.service.DictService` over one
:class:`~ionet.dict.store.Store` (SQLite or MySQL), behind two front doors:
the JSON line protocol (``protocol.py``, port 8888) and DICT, RFC 2229
(``rfc2229.py``, port 2628).  CC-CEDICT is loaded on the first start
(``cedict.py``); ``importers/`` reads dictd, StarDict, CSV and word lists.
"""

from ionet.dict.service import DictService
from ionet.dict.store import Store, open_store

__all__ = ["DictService", "Store", "open_store"]
