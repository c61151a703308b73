"""Raw AMQP access to a fleet's vhost: tap, forge and replay messages.

What an attacker holding broker credentials can do, done with kombu
directly: copy every message sent to a routing key (a queue of one's own
bound to osbackup's exchange), and publish anything there.
"""

import json
import subprocess
import time
import uuid

import kombu

from osbackup import signing


def _url(fleet):
    return fleet.transport_url.replace('rabbit://', 'amqp://', 1)


def _exchange(fleet):
    # As oslo.messaging declares it (amqp_durable_queues and
    # amqp_auto_delete default to False).
    return kombu.Exchange(fleet.exchange, type='topic', durable=False,
                          auto_delete=False)


class Tap:
    """Copies of every message published with ``routing_key``."""

    def __init__(self, fleet, routing_key):
        self.conn = kombu.Connection(_url(fleet))
        self.queue = kombu.Queue('tap-%s' % uuid.uuid4().hex,
                                 exchange=_exchange(fleet),
                                 routing_key=routing_key, exclusive=True,
                                 auto_delete=True)
        self.bound = self.queue(self.conn.channel())
        self.bound.declare()

    def messages(self):
        """Everything received so far, as (raw body, decoded message)."""
        out = []
        while (message := self.bound.get(no_ack=True)) is not None:
            body = message.body
            if isinstance(body, str):
                body = body.encode()
            out.append((body, decode(body)))
        return out

    def wait(self, predicate, timeout=60):
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for raw, msg in self.messages():
                seen.append(msg)
                if predicate(msg):
                    return raw, msg
            time.sleep(0.2)
        raise AssertionError('no matching message in %d s; saw %s'
                             % (timeout, [m.get('method') for m in seen]))

    def close(self):
        self.conn.release()


def decode(body):
    envelope = json.loads(body)
    return json.loads(envelope['oslo.message'])


def encode(msg):
    """An oslo.messaging 2.0 envelope, with a fresh ``_unique_id``.

    oslo.messaging drops a message whose unique id it saw among the last
    16; the id is not signed, so a replayer just makes a new one.
    """
    msg = dict(msg, _unique_id=uuid.uuid4().hex)
    return json.dumps({'oslo.version': '2.0',
                       'oslo.message': json.dumps(msg)})


def publish(fleet, routing_key, msg):
    with kombu.Connection(_url(fleet)) as conn:
        producer = kombu.Producer(conn.channel(), exchange=_exchange(fleet))
        producer.publish(encode(msg), routing_key=routing_key,
                         content_type='application/json',
                         content_encoding='utf-8')


def seal_of(msg):
    return msg.get('_context_' + signing.SEAL_KEY)


def drop_connections(fleet):
    """Close every client connection of the fleet's vhost (only).

    What agents and conductors see when the broker restarts, without
    disturbing other users of a shared broker.
    """
    out = subprocess.run(['rabbitmqctl', '-q', 'list_connections', 'pid',
                          'vhost'], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    pids = [line.split()[0] for line in out.splitlines()
            if line.split()[1:] == [fleet.vhost]]
    for pid in pids:
        subprocess.run(['rabbitmqctl', '-q', 'close_connection', pid,
                        'osbackup fault test'], check=False,
                       capture_output=True, timeout=60)
    return len(pids)
