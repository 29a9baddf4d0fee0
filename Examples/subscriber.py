#!/usr/bin/env python3
"""An accessgw subscriber for a property company's system (README "Integrating").

- subscribes in on_connect, so a broker restart (even one that forgot every session) costs nothing;
- drops redeliveries by CloudEvents source + id with a bounded store, kept across restarts (--state);
- detects gaps per device stream from data.seq (seqs are consecutive within one {serial}.{boot_id});
- asks the gateway to replay what a gap lost (SPEC 4.2, signed with the issuer's Ed25519 key) and fills it;
- with --receipts, publishes signed receipts (SPEC 4.3) for the places (gwepoch, gwseq) it has stored, computed
  from what its state file holds (saved before each receipt), at most one per gateway per second: the gateway
  sends again whatever it does not confirm, so a crash of this process or of any broker between loses nothing.

Prints one JSON line per new event on stdout ({"id","type","device","seq","replayed"}); notes go to stderr.

  pip install paho-mqtt cryptography
  python3 subscriber.py --host broker.example.net --port 8883 --cafile ca.pem --username pm --password ... \\
      --site kunming-guandu --client-id pm-kunming-1 --issuer pm-kunming --key pm-kunming.key --state pm.json \\
      --receipts
"""
import argparse
import base64
import collections
import datetime
import json
import os
import signal
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def note(text):
    print(text, file=sys.stderr, flush=True)


def rfc3339(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text):
    return datetime.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


class BoundedSet:
    """The most recent `size` keys, oldest evicted first: enough to recognise redeliveries, bounded in memory."""

    def __init__(self, size, keys=()):
        self.size = size
        self.keys = collections.OrderedDict((key, None) for key in keys)

    def add(self, key):
        """False when the key was already there."""
        if key in self.keys:
            return False
        self.keys[key] = None
        while len(self.keys) > self.size:
            self.keys.popitem(last=False)
        return True


class Places:
    """The places (gwseq) of one gateway epoch stored here: every place up to `through`, and `ranges` above it
    (ascending, disjoint, not touching). A receipt names `through` and the first 64 ranges (SPEC 4.3)."""

    def __init__(self, epoch, through=0, ranges=()):
        self.epoch = epoch
        self.through = through
        self.ranges = [list(r) for r in ranges]

    def add(self, first, last):
        if last <= self.through:
            return
        first = max(first, self.through + 1)
        merged = []
        for low, high in self.ranges:
            if high + 1 < first or last + 1 < low:
                merged.append([low, high])
            else:
                first, last = min(first, low), max(last, high)
        merged.append([first, last])
        merged.sort()
        while merged and merged[0][0] == self.through + 1:
            self.through = merged.pop(0)[1]
        self.ranges = merged

    def receipt(self, issuer):
        return {"issuer": issuer, "time": rfc3339(datetime.datetime.now(datetime.timezone.utc)), "epoch": self.epoch,
                "through": self.through, "ranges": self.ranges[:64]}

    def state(self):
        return {"epoch": self.epoch, "through": self.through, "ranges": self.ranges}


class Subscriber:
    def __init__(self, args):
        self.args = args
        state = {}
        if args.state and os.path.exists(args.state):
            with open(args.state, encoding="utf-8") as file:
                state = json.load(file)
        self.seen = BoundedSet(args.dedupe_size, (tuple(key) for key in state.get("seen", [])))
        # Per device stream ({site}/{device}/{serial}.{boot}): the highest seq and its recordedtime.
        self.last = state.get("last", {})
        self.missing = {}
        # Per gateway ({prefix}/{site}/gateway/{gateway}/receipt): the places stored, and whether a receipt is due.
        self.places = {topic: Places(**value) for topic, value in state.get("places", {}).items()}
        self.receipts_due = set(self.places)
        self.lock = threading.Lock()
        self.key = None
        if args.key:
            from cryptography.hazmat.primitives.serialization import load_pem_private_key
            with open(args.key, "rb") as file:
                self.key = load_pem_private_key(file.read(), password=None)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5)
        if args.username:
            self.client.username_pw_set(args.username, args.password)
        if args.cafile:
            self.client.tls_set(ca_certs=args.cafile)
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_message
        self.client.on_disconnect = lambda client, userdata, flags, reason, properties: note(f"disconnected: {reason}")
        self.client.reconnect_delay_set(1, 30)

    def reply_topic(self, site):
        """Where the gateway of `site` answers this subscriber's replay requests: only a topic under
        {prefix}/{site}/reply/{issuer}/ is ever answered (SPEC 4.1, 4.2); the replayed events come below it."""
        return f"{self.args.prefix}/{site}/reply/{self.args.issuer or 'unsigned'}/{self.args.client_id}"

    def on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            note(f"connection refused: {reason}")
            return
        # Subscribing here, not once after connect(): a broker that lost our session (restart without
        # persistence) would otherwise send nothing after the reconnect.
        replies = self.reply_topic(self.args.site)
        client.subscribe([(f"{self.args.prefix}/{self.args.site}/+/event/#", 1), (replies, 1), (f"{replies}/+/event/#", 1)])
        note(f"connected, subscribed to {self.args.prefix}/{self.args.site}/+/event/#")

    def on_message(self, client, userdata, message):
        replies = self.reply_topic(self.args.site)
        if mqtt.topic_matches_sub(replies, message.topic):
            note(f"replay reply: {message.payload.decode('utf-8', 'replace')}")
            return
        try:
            event = json.loads(message.payload)
            data = event["data"]
        except (ValueError, KeyError, TypeError):
            note(f"not a CloudEvent on {message.topic}: ignored")
            return
        replayed = mqtt.topic_matches_sub(replies + "/#", message.topic)
        with self.lock:  # the receipt thread saves the state
            if not self.seen.add((event["source"], event["id"])):
                note(f"duplicate dropped: {event['id']}")
                return
            self.track(event, data)
            print(json.dumps({"id": event["id"], "type": event["type"], "device": data["device"],
                              "seq": data.get("seq"), "replayed": replayed}), flush=True)
            self.stored(event, data)

    def stored(self, event, data):
        """Notes the event's place for the next receipt. A gateway.erased event fills its place (delete the erased
        event data.erases names from your database); gateway.events_unconfirmed_expired fills from_gwseq..to_gwseq
        (those events are gone for good: count them as lost)."""
        if not self.args.receipts or "gwseq" not in event:
            return
        topic = f"{self.args.prefix}/{data['site']}/gateway/{data['gateway']}/receipt"
        places = self.places.get(topic)
        if places is None or places.epoch != event["gwepoch"]:
            places = self.places[topic] = Places(event["gwepoch"])  # a new journal starts its places again
        places.add(event["gwseq"], event["gwseq"])
        if event["type"] == "gateway.events_unconfirmed_expired":
            places.add(data["from_gwseq"], data["to_gwseq"])
        self.receipts_due.add(topic)

    def publish_receipts(self):
        """Saves the state, then publishes a receipt (retained, signed) for each gateway with new places."""
        with self.lock:
            due = [(topic, self.places[topic].receipt(self.args.issuer)) for topic in sorted(self.receipts_due)]
            self.receipts_due.clear()
            if due:
                self.save()
        for topic, receipt in due:
            payload = json.dumps(receipt, separators=(",", ":")).encode()
            properties = Properties(PacketTypes.PUBLISH)
            signature = self.key.sign(topic.encode() + b"\n" + payload)
            properties.UserProperty = ("signature", base64.b64encode(signature).decode())
            self.client.publish(topic, payload, qos=1, retain=True, properties=properties)
            note(f"receipt: {payload.decode()}")

    def track(self, event, data):
        """Gap detection: device log events carry consecutive seqs per stream; a jump means lost events."""
        seq = data.get("seq")
        if seq is None:
            return  # gateway-made events have no seq
        stream = event["id"].rsplit("/", 1)[0]
        missing = self.missing.get(stream)
        if missing is not None and seq in missing:
            missing.discard(seq)
            if not missing:
                note(f"gap in {stream} filled")
                del self.missing[stream]
        last = self.last.get(stream)
        if last is not None and seq > last["seq"] + 1:
            gap = set(range(last["seq"] + 1, seq))
            self.missing.setdefault(stream, set()).update(gap)
            note(f"gap in {stream}: seq {min(gap)}..{max(gap)} missing; asking for a replay")
            self.request_replay(data, since=last["recordedtime"], until=event["recordedtime"])
        if last is None or seq > last["seq"]:
            self.last[stream] = {"seq": seq, "recordedtime": event["recordedtime"]}

    def request_replay(self, data, since, until):
        topic = f"{self.args.prefix}/{data['site']}/gateway/{data['gateway']}/replay"
        request_id = f"gap-{uuid.uuid4().hex[:12]}"
        # `time` and `ttl_ms` make the request fresh for 30 s; the gateway never replays past `time` (SPEC 4.2).
        payload = json.dumps({"id": request_id, "issuer": self.args.issuer, "time": rfc3339(datetime.datetime.now(datetime.timezone.utc)),
                              "ttl_ms": 30_000,
                              "from": since, "to": rfc3339(parse_time(until) + datetime.timedelta(milliseconds=1)),
                              "devices": [data["device"]]}, separators=(",", ":")).encode()
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = self.reply_topic(data["site"])
        properties.CorrelationData = request_id.encode()
        if self.key is not None:
            signature = self.key.sign(topic.encode() + b"\n" + payload)
            properties.UserProperty = ("signature", base64.b64encode(signature).decode())
        self.client.publish(topic, payload, qos=1, properties=properties)

    def save(self):
        if not self.args.state:
            return
        temporary = self.args.state + ".tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump({"seen": list(self.seen.keys), "last": self.last,
                       "places": {topic: places.state() for topic, places in self.places.items()}}, file)
        os.replace(temporary, self.args.state)

    def run(self):
        def stop(signum, frame):
            self.client.disconnect()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])  # a parent may have blocked them
        if self.args.receipts:
            def receipts():
                while True:
                    time.sleep(1)
                    self.publish_receipts()
            threading.Thread(target=receipts, daemon=True).start()
        self.client.connect(self.args.host, self.args.port, keepalive=30)
        try:
            self.client.loop_forever(retry_first_connection=True)
        finally:
            with self.lock:
                self.save()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--cafile", help="CA of the broker, for TLS")
    parser.add_argument("--prefix", default="accessgw")
    parser.add_argument("--site", default="+", help="a site, or + for every site on the broker")
    parser.add_argument("--client-id", required=True, help="unique per subscriber process")
    parser.add_argument("--issuer", help="issuer id for replay requests (commands.issuers with permission replay)")
    parser.add_argument("--key", help="the issuer's Ed25519 private key (PEM); without it requests are unsigned")
    parser.add_argument("--state", help="file keeping the dedupe store and per-device seqs across restarts")
    parser.add_argument("--dedupe-size", type=int, default=100_000)
    parser.add_argument("--receipts", action="store_true",
                        help="publish signed receipts for the events stored (needs --issuer with permission receipt, --key, --state)")
    args = parser.parse_args()
    if args.receipts and not (args.issuer and args.key and args.state):
        parser.error("--receipts needs --issuer, --key and --state: a receipt must only name what is saved")
    Subscriber(args).run()


if __name__ == "__main__":
    main()
