"""The playground over plain HTTP: the page and its assets (types, CSP, caching, no key
needed), and the files the Lambda package ships. The page in a browser: tests/test_playground.py.
"""

import re
import shutil
from pathlib import Path

import httpx

PLAYGROUND = Path(__file__).resolve().parent.parent / "service" / "playground"
_ASSET_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
# Every stylesheet and module in the package, so a new module is covered without listing it.
ASSET_FILES = sorted(
    path.name for path in PLAYGROUND.iterdir() if path.is_file() and path.suffix in _ASSET_TYPES
)
ASSETS = {"/playground": "text/html; charset=utf-8"} | {
    f"/playground/{name}": _ASSET_TYPES[Path(name).suffix] for name in ASSET_FILES
}


def test_page_and_assets_over_http(client: httpx.Client) -> None:
    page = client.get("/playground")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"

    # Scripts and styles come from files (the CSP allows nothing inline), from this origin.
    html = page.text
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="module" src="playground/playground.js">'
    ]
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    assert {"playground.css", "playground.js"} <= set(ASSET_FILES)
    imports: dict[str, list[str]] = {}
    for path, media_type in ASSETS.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == media_type, path
        assert response.headers["content-security-policy"] == csp, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert not re.search(r"https?://|['\"(]//", response.text), path
        assert "@import" not in response.text
        if path.endswith(".js"):
            assert not re.search(r"\bimport\s*\(", response.text), path  # no dynamic import
            imports[Path(path).name] = re.findall(r'^import\b[^;]*"([^"]+)";$', response.text, re.M)
    # Modules import one another by relative name only, and the page's script reaches them all.
    reached, todo = set(), ["playground.js"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            for name in imports.get(module, []):
                assert re.fullmatch(r"\./[a-z]+\.js", name), (module, name)
                todo.append(name[2:])
    assert reached == set(imports)
    icon = client.get("/playground/favicon.svg")
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert re.findall(r"https?://\S+", icon.text) == ['http://www.w3.org/2000/svg"']  # xmlns

    # A trailing slash finds the page too; the assets are not API.
    assert client.get("/playground/", follow_redirects=True).url.path == "/playground"
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/playground")]


def test_playground_files_ship_in_the_lambda_package() -> None:
    from service.deploy import package

    folder = Path(package.ROOT / "service" / "playground")
    shipped = {path.name for path in folder.iterdir() if path.is_file()}
    assert {"__init__.py", "index.html", *ASSET_FILES} <= shipped
    # lay_out copies service/ leaving out only these names (and byte code):
    ignore = shutil.ignore_patterns("__pycache__", *package._UNUSED_SERVICE_PARTS)
    assert ignore(str(folder), sorted(shipped)) == set()
    assert ignore(str(folder.parent), ["playground"]) == set()
