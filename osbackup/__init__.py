"""osbackup: backup and restore for the control plane of an OpenStack cloud.

osbackup never uses eventlet. oslo.messaging imports oslo.service, whose
default backend is still eventlet, so the threading backend is chosen
here, before any other osbackup module (and so oslo.messaging) is imported.
It is chosen by a hook rather than loaded: loading it imports futurist and
eventlet (a quarter of a second), which commands that never touch the
message bus (``osbackup-manage --help``) do not pay.
"""

import warnings

from oslo_service import backend as _backend

# futurist probes for eventlet when it is installed; that import is
# harmless and its deprecation warning is noise for operators.
warnings.filterwarnings('ignore', message=r'(?s).*Eventlet is deprecated')
warnings.filterwarnings('ignore',
                        message=r'eventletutils module is deprecated')


def _threading() -> _backend.BackendType:
    return _backend.BackendType.THREADING


_backend.register_backend_default_hook(_threading)
