"""Remote against a real S3 server: listings of more than one page."""

from __future__ import annotations

import concurrent.futures
import io

import minio

from audb_publish.remote import Remote
from audb_publish.testing import ACCESS_KEY
from audb_publish.testing import SECRET_KEY

OBJECTS = 1234  # S3 lists at most 1,000 keys per page


def test_listing_of_more_than_one_page(repositories, seaweedfs):
    repository = repositories.new("s3")
    client = minio.Minio(seaweedfs.host, ACCESS_KEY, SECRET_KEY, secure=False)
    folder = "/db/media/1.0.0/"
    names = [f"{i:05d}.zip" for i in range(OBJECTS)]

    def put(name: str) -> None:
        data = name.encode()  # sizes differ by name, for the check below
        key = f"{folder[1:]}{name}"
        client.put_object(repository.name, key, io.BytesIO(data), len(data))

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, names))
    # an object in a sub-folder is not directly below the folder
    put_sub = f"{folder[1:]}sub/x.zip"
    client.put_object(repository.name, put_sub, io.BytesIO(b"x"), 1)

    with Remote(repository.create_backend_interface()) as remote:
        pages = []
        execute = remote.backend._client._execute

        def counted(method, bucket, **kwargs):
            pages.append(kwargs.get("query_params", {}).get("continuation-token"))
            return execute(method, bucket, **kwargs)

        remote.backend._client._execute = counted
        listed = remote.store.list(folder)
        assert len(pages) >= 2 and pages[0] is None and all(pages[1:])
        assert listed == {
            folder + name: (len(name), listed[folder + name][1]) for name in names
        }
        # present() lists the folder once, across its pages
        paths = [f"/db/media/{name}" for name in names] + ["/db/media/gone.zip"]
        pages.clear()
        assert remote.present(paths, "1.0.0") == [True] * OBJECTS + [False]
        assert len(pages) >= 2
