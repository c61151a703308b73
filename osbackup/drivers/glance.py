"""Glance: configuration, state and logs; the image store on request."""

from osbackup.drivers import fileset


class GlanceDriver(fileset.FileSetDriver):
    name = 'glance'
    PATHS = ('/etc/glance', '/var/lib/glance')
    LOG_PATHS = ('/var/log/glance',)
    OPTIONAL_PATHS = (('include_images', '/var/lib/glance/images'),)
    MARKERS = ('/etc/glance',)
