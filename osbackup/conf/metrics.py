"""[metrics] options: the conductor's Prometheus metrics."""

from oslo_config import cfg

metrics_group = cfg.OptGroup(
    'metrics', title='Prometheus metrics of the conductor',
    help='Freshness of every backup, agents, tasks and restores, computed '
         'from the catalogue. Both outputs are off by default.')

metrics_opts = [
    cfg.StrOpt('listen',
               help='Address (host:port) on which the conductor serves '
                    '/metrics over HTTP for Prometheus to scrape, e.g. '
                    '127.0.0.1:9871 '
                    '(IPv6: [::1]:9871). Empty: no HTTP endpoint. With '
                    'several conductors, scrape one: each reports the '
                    'whole catalogue.'),
    cfg.StrOpt('textfile_path',
               help='File the conductor rewrites (atomically) with the '
                    'metrics every textfile_interval seconds, for '
                    'node_exporter\'s textfile collector (e.g. '
                    '/var/lib/node_exporter/textfile_collector/'
                    'osbackup.prom). Empty: none written.'),
    cfg.IntOpt('textfile_interval', default=60, min=1,
               help='Seconds between two writes of textfile_path.'),
]


def register_opts(conf):
    conf.register_group(metrics_group)
    conf.register_opts(metrics_opts, group=metrics_group)


def list_opts():
    return {metrics_group: metrics_opts}
