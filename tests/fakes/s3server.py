"""An S3-compatible server for tests: moto's standalone server on a free port.

It speaks the S3 REST API over real HTTP, so S3Store is exercised through
botocore's real network stack, signing, retries and multipart uploads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer


@dataclass
class S3Server:
    endpoint_url: str
    _server: ThreadedMotoServer

    def stop(self) -> None:
        self._server.stop()


def start_s3_server() -> S3Server:
    """Start moto on 127.0.0.1 and a port the kernel picks."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return S3Server(endpoint_url=f"http://{host}:{port}", _server=server)


def create_bucket(endpoint_url: str, name: str, region: str = "us-east-1") -> None:
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()


def delete_bucket(endpoint_url: str, name: str, region: str = "us-east-1") -> None:
    """Empty and remove a bucket (moto keeps everything in memory)."""
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=name)
    finally:
        client.close()
