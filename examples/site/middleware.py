"""Middleware of the example site: headers every response should carry."""

from ionet.web import Request, Response


class SecurityHeaders:
    """Ask browsers not to guess content types, frame the site, or leak URLs."""

    def after_request(self, request: Request, response: Response) -> Response:
        response.set_header("X-Content-Type-Options", "nosniff")
        response.set_header("X-Frame-Options", "DENY")
        response.set_header("Referrer-Policy", "same-origin")
        return response
