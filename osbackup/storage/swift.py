"""Swift storage: artifacts as objects in an OpenStack Swift container.

python-swiftclient does the requests, authenticated by a keystoneauth1
session (Keystone v3 password or application credential) or by the v1
protocol of tempauth test clusters. Artifacts live in ``[swift_storage]
container``; one larger than ``segment_size`` is a Static Large Object
whose segments are ``<key>/<upload id>/<n>`` in ``<container>_segments``.
The upload id starts with the upload's start time, so a leftover's age
is known from its name alone.

The manifest (or the single object) is the commit: it carries the sha256
of the stream (``X-Object-Meta-Osbackup-Sha256``) and the upload id, and
only then is the artifact visible. Segments of an aborted upload are
deleted at once; those of an interrupted one (no manifest names their
upload id) by the agent's start-up clean-up or by prune after a day.

Locations are ``swift://<container>/<key>``.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
import uuid

from oslo_log import log as logging

from osbackup import exception
from osbackup.storage import base
from osbackup.storage import objstore

LOG = logging.getLogger(__name__)

SCHEME = 'swift:'
SHA256_HEADER = 'x-object-meta-osbackup-sha256'
UPLOAD_HEADER = 'x-object-meta-osbackup-upload'
CHUNK = 1 << 20


def _lib():
    # Imported on first use: hosts without a swift target need neither
    # swiftclient nor keystoneauth1 loaded.
    import swiftclient
    return swiftclient


def upload_id(now: float | None = None) -> str:
    """A new upload id: start time (s) and a random part."""
    return '%010d-%s' % (int(time.time() if now is None else now),
                         uuid.uuid4().hex[:12])


def _swift_time(text: str) -> float:
    """POSIX time of a container listing's ``last_modified`` (UTC)."""
    stamp = datetime.datetime.fromisoformat(text.rstrip('Z'))
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


def upload_started(upload: str) -> float | None:
    stamp = upload.partition('-')[0]
    return float(stamp) if stamp.isdigit() else None


class _SwiftUpload:
    """One SLO upload: segments, then the manifest."""

    def __init__(self, storage: 'SwiftStorage', key: str):
        self.storage = storage
        self.key = key
        self.upload = upload_id()
        self.prefix = '%s/%s/' % (key, self.upload)
        storage.ensure_segments_container()

    def put_part(self, number, data, md5):
        name = '%s%08d' % (self.prefix, number)
        etag = md5.hex()
        self.storage.call(
            'Uploading segment %d of %s' % (number, self.storage.location(
                self.key)),
            self.storage.request, 'put_object', self.storage.segments, name,
            contents=data, content_length=len(data), etag=etag)
        return {'path': '/%s/%s' % (self.storage.segments, name),
                'etag': etag, 'size_bytes': len(data)}

    def complete(self, parts, sha256, size):
        manifest = json.dumps(parts).encode()
        self.storage.call(
            'Committing %s (the manifest of %d segments)'
            % (self.storage.location(self.key), len(parts)),
            self.storage.request, 'put_object', self.storage.container,
            self.key, contents=manifest, content_length=len(manifest),
            query_string='multipart-manifest=put',
            headers={SHA256_HEADER: sha256, UPLOAD_HEADER: self.upload})

    def abort(self):
        self.storage.delete_segments(self.prefix)


class _SwiftTarget(objstore.Target):
    def put_whole(self, data, sha256, md5):
        self.storage.call(
            'Uploading %s' % self.location, self.storage.request,
            'put_object', self.storage.container, self.key, contents=data,
            content_length=len(data), etag=md5.hex(),
            headers={SHA256_HEADER: sha256})

    def begin(self):
        return _SwiftUpload(self.storage, self.key)


class _Body:
    """An object body whose close() never raises."""

    def __init__(self, body):
        self._body = body

    def read(self, n):
        return self._body.read(n)

    def close(self):
        self._body.close()


class SwiftStorage(objstore.ObjectStorage):
    """Artifacts in ``[swift_storage] container``."""

    name = 'swift'
    scheme = SCHEME

    def __init__(self, conf, options=None):
        options = options if options is not None else conf.swift_storage
        super().__init__(conf, options, options.container,
                         options.segment_size, options.segment_concurrency)
        self.options_group = '[swift_storage]'
        self.segments = options.container + '_segments'
        self._local = threading.local()
        self._session = None
        self._session_lock = threading.Lock()
        self._segments_ready = False
        self._check_options()

    def _check_options(self):
        o = self.options
        if not o.auth_url:
            raise exception.InvalidInput(
                '[swift_storage] auth_url is not set: the Keystone URL, or '
                'the tempauth URL with auth_version = 1')
        if o.auth_version == 1 or not o.application_credential_id:
            if not o.user or not o.key:
                raise exception.InvalidInput(
                    '[swift_storage] user and key must be set (or, with '
                    'auth_version = 3, application_credential_id and '
                    'application_credential_secret)')
        if not o.container or '/' in o.container:
            raise exception.InvalidInput(
                '[swift_storage] container %r is not a container name'
                % o.container)

    # -- connections -------------------------------------------------------

    def _keystone_session(self):
        with self._session_lock:
            if self._session is None:
                from keystoneauth1.identity import v3
                from keystoneauth1 import session
                o = self.options
                if o.application_credential_id:
                    auth = v3.ApplicationCredential(
                        auth_url=o.auth_url,
                        application_credential_id=o.application_credential_id,
                        application_credential_secret=(
                            o.application_credential_secret))
                else:
                    auth = v3.Password(
                        auth_url=o.auth_url, username=o.user,
                        password=o.key, project_name=o.project_name,
                        user_domain_name=o.user_domain_name,
                        project_domain_name=o.project_domain_name)
                verify = False if o.insecure else (o.cafile or True)
                self._session = session.Session(auth=auth, verify=verify,
                                                timeout=o.timeout)
            return self._session

    def connection(self):
        """This thread's swiftclient Connection (they are not shared)."""
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            o = self.options
            # Retries are ours (objstore.Retrier); swiftclient still
            # re-authenticates once on a 401 from an expired token.
            common = dict(retries=0, timeout=o.timeout, insecure=o.insecure,
                          cacert=o.cafile)
            if o.auth_version == 1:
                conn = _lib().Connection(authurl=o.auth_url, user=o.user,
                                         key=o.key, auth_version='1',
                                         **common)
            else:
                conn = _lib().Connection(
                    session=self._keystone_session(),
                    os_options={'service_type': 'object-store',
                                'interface': o.interface,
                                'region_name': o.region_name}, **common)
            self._local.conn = conn
        return conn

    def request(self, method: str, *args, **kwargs):
        return getattr(self.connection(), method)(*args, **kwargs)

    def classify(self, exc, what):
        hint = '[swift_storage] auth_url, user, key and project_name ' \
            '(or the application credential)'
        swiftclient = _lib()
        if isinstance(exc, swiftclient.ClientException):
            status = exc.http_status
            detail = exc.http_response_content or exc.msg
            if isinstance(detail, bytes):
                detail = detail.decode('utf-8', 'replace')
            if status is None:
                if 'auth' in str(exc.msg).lower():
                    status = 401
                else:
                    return objstore.connection_failure(what, exc)
            return objstore.http_failure(
                status, what, detail, hint,
                quota=status == 413 and 'quota' in str(detail).lower())
        try:
            from keystoneauth1 import exceptions as ks
        except ImportError:     # pragma: no cover
            ks = None
        if ks is not None:
            if isinstance(exc, (ks.ConnectFailure, ks.ConnectTimeout,
                                ks.RetriableConnectionFailure)):
                return objstore.connection_failure(what, exc)
            if isinstance(exc, ks.HttpError):
                return objstore.http_failure(exc.http_status, what,
                                             exc.message, hint)
            if isinstance(exc, ks.EndpointNotFound):
                return objstore.Failure(exception.StorageError(
                    '%s failed: Keystone has no object-store endpoint '
                    '(interface %s, region %s); check [swift_storage] '
                    'interface and region_name'
                    % (what, self.options.interface,
                       self.options.region_name or 'any')))
            if isinstance(exc, ks.ClientException):
                return objstore.Failure(exception.StorageError(
                    '%s failed: %s' % (what, exc)))
        return objstore.connection_failure(what, exc)

    # -- containers --------------------------------------------------------

    def _ensure(self, container: str) -> None:
        what = 'Checking the container %s' % container
        try:
            self.call(what, self.request, 'head_container', container)
            return
        except exception.NotFound:
            pass
        headers = {}
        if self.options.storage_policy:
            headers['X-Storage-Policy'] = self.options.storage_policy
        LOG.info('Creating the Swift container %s', container)
        self.call('Creating the container %s (it is missing)' % container,
                  self.request, 'put_container', container, headers=headers)

    def ensure_container(self):
        self._ensure(self.container)

    def ensure_segments_container(self):
        with self._ready_lock:
            if not self._segments_ready:
                self._ensure(self.segments)
                self._segments_ready = True

    def target(self, key):
        return _SwiftTarget(self, key)

    # -- reads -------------------------------------------------------------

    def fetch(self, key):
        location = self.location(key)

        def fetch(offset, etag):
            headers = {'Range': 'bytes=%d-' % offset} if offset else {}
            rheaders, body = self.request('get_object', self.container, key,
                                          resp_chunk_size=CHUNK,
                                          headers=headers)
            size = int(rheaders.get('content-length', 0))
            crange = rheaders.get('content-range', '')
            if crange.rpartition('/')[2].isdigit():
                size = int(crange.rpartition('/')[2])
            slo = rheaders.get('x-static-large-object', '').lower() == 'true'
            info = objstore.ObjectInfo(
                size=size, etag=rheaders.get('etag', '').strip('"'),
                sha256=rheaders.get(SHA256_HEADER, ''),
                etag_kind='none' if slo else 'md5')
            if not info.sha256 and slo:
                LOG.warning('%s has no recorded sha256: only its length '
                            'is checked here', location)
            return info, _Body(body)
        return fetch

    # -- the rest of the Storage API ---------------------------------------

    def delete(self, location):
        key = self.key_of(location)
        self._free = None
        try:
            headers = self.call('Checking %s' % location, self.request,
                                'head_object', self.container, key)
        except exception.NotFound:
            return
        segments = []
        if headers.get('x-static-large-object', '').lower() == 'true':
            segments = self._manifest_segments(key)
        # The manifest first: then no visible artifact misses a segment.
        try:
            self.call('Deleting %s' % location, self.request,
                      'delete_object', self.container, key)
        except exception.NotFound:
            pass
        for name in segments:
            self._delete_segment(name)

    def _manifest_segments(self, key: str) -> list[str]:
        """Names of the segments in our segments container ``key`` uses."""
        _headers, body = self.call(
            'Reading the manifest of %s' % self.location(key), self.request,
            'get_object', self.container, key,
            query_string='multipart-manifest=get')
        head = '/%s/' % self.segments
        # Only our own segments: a manifest may name others' objects.
        return [item['name'][len(head):] for item in json.loads(body)
                if item.get('name', '').startswith(head)]

    def _delete_segment(self, name: str) -> None:
        try:
            self.call('Deleting segment %s' % name, self.request,
                      'delete_object', self.segments, name)
        except exception.NotFound:
            pass

    def exists(self, location):
        key = self.key_of(location)
        try:
            self.call('Checking %s' % location, self.request, 'head_object',
                      self.container, key)
        except exception.NotFound:
            return False
        return True

    def quota_free_bytes(self):
        """The smallest room left under the account and container quotas."""
        room = []
        heads = [self.call('Reading the account quota', self.request,
                           'head_account')]
        for container in (self.container, self.segments):
            try:
                heads.append(self.call(
                    'Reading the quota of %s' % container, self.request,
                    'head_container', container))
            except exception.NotFound:
                pass
        for headers in heads:
            for kind in ('account', 'container'):
                limit = headers.get('x-%s-meta-quota-bytes' % kind, '')
                used = headers.get('x-%s-bytes-used' % kind, '0')
                if limit.isdigit():
                    room.append(max(0, int(limit) - int(used or 0)))
        return min(room) if room else None

    def list(self, prefix=''):
        """The container's objects, a page at a time (marker paging).

        Segments live in the segments container and are never listed; an
        SLO manifest is listed with the size of the whole object.
        """
        marker = ''
        while True:
            try:
                _headers, page = self.call(
                    'Listing %s' % self.location(prefix), self.request,
                    'get_container', self.container, prefix=prefix or None,
                    marker=marker or None, limit=self.list_page)
            except exception.NotFound:
                raise exception.StorageError(
                    'Cannot list %s: the container %s does not exist'
                    % (self.location(prefix), self.container))
            if not page:
                return
            for item in page:
                if 'name' not in item:
                    continue    # a pseudo-directory ("subdir")
                yield base.StoredObject(self.location(item['name']),
                                        int(item['bytes']),
                                        _swift_time(item['last_modified']))
            marker = page[-1].get('name') or page[-1].get('subdir')

    def _listing(self, container, prefix):
        try:
            _headers, listing = self.call(
                'Listing %s' % container, self.request, 'get_container',
                container, prefix=prefix or None, full_listing=True)
        except exception.NotFound:
            return []
        return listing

    def delete_segments(self, prefix: str) -> list[str]:
        """Delete the segments named ``prefix*``."""
        removed = []
        for item in self._listing(self.segments, prefix):
            self._delete_segment(item['name'])
            removed.append('%s//%s/%s' % (self.scheme, self.segments,
                                          item['name']))
        return removed

    def _committed_upload(self, key: str) -> str | None:
        try:
            headers = self.call('Checking %s' % self.location(key),
                                self.request, 'head_object',
                                self.container, key)
        except exception.NotFound:
            return None
        return headers.get(UPLOAD_HEADER)

    def remove_orphans(self, prefix, before):
        """Segments of uploads no manifest names, started before."""
        uploads = set()
        for item in self._listing(self.segments, prefix):
            key, _, rest = item['name'].rpartition('/')
            key, _, upload = key.rpartition('/')
            started = upload_started(upload)
            if base.ours(key) and started is not None and started < before:
                uploads.add((key, upload))
        removed = []
        for key, upload in sorted(uploads):
            if self._committed_upload(key) == upload:
                continue
            removed += self.delete_segments('%s/%s/' % (key, upload))
        return removed
