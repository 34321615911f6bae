"""Locust HTTP user: phones scanning QR codes and scripts on the Handle REST API.

Its base URL is Locust's --host (http://HOST:PORT of the node's HTTP face, or
https://... verified against --ca-file).
"""

from __future__ import annotations

from locust import HttpUser, between, task

from loadtest.locust_common import identifiers


class HttpResolverUser(HttpUser):
    """A scan (the redirect), now and then the lookup page, and REST GETs; four in five
    identifiers exist, one in five does not.

    Reported by Locust as GET requests named after the route: an existing identifier
    must answer 302 (scan) or 200 (page, REST), a missing one 404; anything else is a
    failure.
    """

    wait_time = between(0.0, 0.01)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self._identifiers = identifiers(options)
        if options is not None and options.ca_file:
            self.client.verify = options.ca_file  # an https:// host is verified against it

    @task(10)
    def scan(self) -> None:
        self._get("/{}", "/{identifier}", found=302)

    @task(2)
    def page(self) -> None:
        self._get("/{}?noredirect", "/{identifier}?noredirect", found=200)

    @task(5)
    def rest(self) -> None:
        self._get("/api/handles/{}", "/api/handles/{identifier}", found=200)

    def _get(self, path: str, name: str, found: int) -> None:
        identifier, exists = self._identifiers.pick()
        expected = found if exists else 404
        with self.client.get(
            path.format(identifier), name=name, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code == expected:
                response.success()
            else:
                response.failure(f"expected {expected}, got {response.status_code}")
