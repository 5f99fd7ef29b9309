#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A TLS "broker" that measures how many MQTT CONNECTs a client has in flight at once: each
# CONNECT's CONNACK (0, accepted) is held until HOLD connections wait for theirs, or 3 s passed.
# A client probing one device after another therefore waits 3 s per device and never has more
# than one waiting; one probing N at a time has N waiting. Prints its port on stdout when it
# listens; writes the largest number seen waiting at once, and the CONNECTs answered, to STATS.
#   mqtt_hold_broker.py CERT KEY HOLD STATS
import asyncio
import os
import ssl
import sys

cert, key, hold, stats_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
waiting = 0
most = 0
answered = 0
changed = asyncio.Condition()


def write_stats():
    with open(stats_path + ".tmp", "w") as f:
        f.write(f"{most} {answered}\n")
    os.replace(stats_path + ".tmp", stats_path)


async def read_packet(reader):
    first = await reader.readexactly(1)
    length, shift = 0, 0
    while True:
        b = (await reader.readexactly(1))[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if b & 0x80 == 0:
            break
    return first[0], await reader.readexactly(length)


async def serve(reader, writer):
    global waiting, most, answered
    try:
        kind, _ = await read_packet(reader)
        if kind & 0xF0 != 0x10:  # not a CONNECT
            return
        async with changed:
            waiting += 1
            most = max(most, waiting)
            changed.notify_all()
            try:
                await asyncio.wait_for(changed.wait_for(lambda: most >= hold), 3)
            except asyncio.TimeoutError:
                pass
            waiting -= 1
            answered += 1
            write_stats()
        writer.write(b"\x20\x02\x00\x00")
        await writer.drain()
        await reader.read()  # DISCONNECT, then the client closes
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
        pass  # the probe's plain TCP check connects and closes without a handshake
    finally:
        writer.close()


async def main():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    write_stats()
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


loop = asyncio.new_event_loop()
loop.set_exception_handler(lambda _loop, _context: None)  # handshakes the TCP check cut short
loop.run_until_complete(main())
