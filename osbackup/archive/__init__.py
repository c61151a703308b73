"""Streaming tar archives of service file sets, and their safe restore.

An archive is a zstd-compressed POSIX pax tar stream of directories,
regular files and symlinks relative to a node root, ending with a JSON
manifest member that lists every entry and each file's sha256.

An incremental archive is written against the manifest of an earlier one
(its base): a regular file whose inode, size, mtime and ctime are all
unchanged is not stored again; its manifest entry says in which earlier
backup (``in``) the bytes are. Directories, symlinks and every changed file
are stored as usual, so the manifest alone describes the whole tree of that
moment, and a file deleted since the base is simply absent from it.  Both
the writer and the reader handle the tar format themselves, as tarfile is
too slow for trees of many small files.  Extraction runs as root, so it
applies its own member rule rather than tarfile's (entry_problem and
tree_problem, which the writer applies too): links are restored as links
whatever they point to, like tarfile's ``tar`` filter, but nothing is ever
written through one or outside the staging directories.

Restores read an archive through a check of its whole sha256 against the
catalogue, which proves every byte of it; they pass ``hash_files=False``
so that file data is not hashed a second time (about 1 s of CPU per GB).
Without that proof (``backup verify --deep``), every file's sha256 is
checked against the manifest.

Each job lives in its own module: common (the format's shared names and
the restore's rule), writer, reader and extractor (which reads through
reader).  This package only names their public API.
"""

from osbackup.archive import common
from osbackup.archive import extractor
from osbackup.archive import reader
from osbackup.archive import writer

MANIFEST_NAME = common.MANIFEST_NAME
FORMAT = common.FORMAT
CHUNK = common.CHUNK
RESTORED_KINDS = common.RESTORED_KINDS
entry_problem = common.entry_problem
tree_problem = common.tree_problem
check_manifest = common.check_manifest

ArchiveStats = writer.ArchiveStats
write_archive = writer.write_archive

verify_archive = reader.verify_archive

extract_archive = extractor.extract_archive
extract_chain = extractor.extract_chain
