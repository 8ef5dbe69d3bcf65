"""Web search for ``web_search_options``: a search engine the operator chooses
(``backends``), the results turned into numbered sources within a token budget
(``sources``, pages read by ``pages``), and the answer's ``[n]`` markers turned into
links with ``url_citation`` annotations (``citations``). ``web.WebSearch`` ties them."""
