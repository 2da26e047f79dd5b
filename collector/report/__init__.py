"""The annual report (issue 9, item 5; docs/reports.md).

``model`` gathers a typed ``AnnualReport`` from the inventory, the coverage history and
the alerts (pure); ``layout`` turns it into sections in Vietnamese or English
(``i18n``); ``render_*`` write Markdown, Word, Excel or PDF; ``api`` serves
``GET /v1/reports/annual`` with the coverage API's access rules; ``cli`` is
``canhgac report annual``. Nothing is imported here: the CLI loads only what it runs.
"""

