"""FTP on loopback, ionet vs pyftpdlib vs vsftpd: ``python bench/ftp.py --help``."""

from ionet.bench.ftp import main

raise SystemExit(main())
