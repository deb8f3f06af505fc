"""Project middleware: the language of an answer.

Pages follow the fan's `Accept-Language` (Django's LocaleMiddleware); the API always answers in English.
Clients branch on `code`; `detail` is for the developer reading logs, and DRF words its own details (and
field errors) in the active language when it raises them, so the language must be English before the view
runs, not when the error is shaped.
"""

from __future__ import annotations

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation

from queues.errors import API_PREFIX


class PageLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request):
        if request.path_info.startswith(API_PREFIX):
            translation.activate(settings.API_LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.API_LANGUAGE_CODE
            return None
        return super().process_request(request)

    def process_response(self, request, response):
        if request.path_info.startswith(API_PREFIX):
            return response  # no Content-Language / Vary on Accept-Language: the API has one language
        return super().process_response(request, response)
