"""Compute nodes: libvirt secrets and the Ceph client keyrings.

Ceph-backed volumes are attached through libvirt secrets holding the
cephx keys; without them and /etc/ceph no instance reaches its volumes.
"""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='libvirt', title='libvirt and Ceph client file-set driver',
    package='libvirt-daemon',
    paths=('/etc/libvirt', '/etc/ceph'),
    log_paths=('/var/log/libvirt',),
    markers=('/etc/libvirt',),
    units=('libvirtd', 'virtqemud'),
    secrets=(base.Secret('/etc/libvirt/secrets',
                         'libvirt secrets (cephx keys of Ceph-backed '
                         'volumes)', critical=True),
             base.Secret('/etc/ceph',
                         'Ceph client configuration and keyrings'
                         ' (ceph.client.*.keyring)', critical=True)),
    after=())
