#!/usr/bin/env python3
"""Uploads a file with tuspy (Debian's python3-tuspy), stopping after a few chunks and resuming
with a new uploader from the stored upload URL, as a second run of a script would after a crash.

usage: tuspy_upload.py <tus-endpoint> <file> <chunk-size> <chunks-before-stop> [token]
Prints one JSON line: {"url", "stoppedAt", "resumedFrom", "offset", "chunks"}.
"""
import json
import os
import sys

from tusclient import client


def main() -> int:
    endpoint, path, chunk_size, stop_after = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    token = sys.argv[5] if len(sys.argv) > 5 else None
    headers = {"Authorization": "Bearer " + token} if token else {}
    tus = client.TusClient(endpoint, headers=headers)

    # First run: create the upload and send a few chunks, then stop.
    first = tus.uploader(path, chunk_size=chunk_size, metadata={"filename": os.path.basename(path)})
    chunks = 0
    for _ in range(stop_after):
        first.upload_chunk()
        chunks += 1
    url, stopped_at = first.url, first.offset

    # Second run: a new uploader given the stored URL asks the server for its offset (HEAD) and
    # sends the rest from there.
    second = tus.uploader(path, chunk_size=chunk_size, url=url)
    resumed_from = second.offset
    while second.offset < second.get_file_size():
        second.upload_chunk()
        chunks += 1

    print(json.dumps({
        "url": url,
        "stoppedAt": stopped_at,
        "resumedFrom": resumed_from,
        "offset": second.offset,
        "chunks": chunks,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
