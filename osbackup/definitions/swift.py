"""Swift: /etc/swift with the ring and builder files, which are critical.

Ring distribution reads the rings from one archive, so swift backups are
always full.
"""

from osbackup.definitions import base

DEFINITION = base.ServiceDefinition(
    name='swift', title='Swift file-set driver',
    package='swift',
    paths=('/etc/swift', '/var/lib/swift'),
    log_paths=('/var/log/swift',),
    markers=('/etc/swift',),
    units=('swift-proxy', 'swift-account', 'swift-container',
           'swift-object'),
    secrets=(base.Secret('/etc/swift/swift.conf',
                         'swift_hash_path_prefix/suffix: objects cannot be '
                         'found without them', critical=True),),
    incremental=False)
