"""osbackup: backup and restore for the control plane of an OpenStack cloud.

osbackup never uses eventlet. oslo.messaging imports oslo.service, whose
default backend is still eventlet, so the threading backend is selected
here, before any other osbackup module (and so oslo.messaging) is imported.
"""

import warnings

from oslo_service import backend as _backend
from oslo_service.backend import exceptions as _backend_exc

# futurist probes for eventlet when it is installed; that import is
# harmless and its deprecation warning is noise for operators.
warnings.filterwarnings('ignore', message=r'(?s).*Eventlet is deprecated')
warnings.filterwarnings('ignore',
                        message=r'eventletutils module is deprecated')

try:
    _backend.init_backend(_backend.BackendType.THREADING)
except _backend_exc.BackendAlreadySelected:
    pass
