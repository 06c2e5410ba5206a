"""The pythondocs source: HTML parsing on inline excerpts of python3-doc's pages, and counts on the installed ones."""
# ruff: noqa: E501  (the excerpts are verbatim python3-doc HTML lines)

from __future__ import annotations

from dataclasses import replace

from tests.source_checks import Text, check_tasks, installed
from training.recipe.sources.pythondocs import SKIP_PAGES, SOURCE, build, locate

SHUTIL = """<html><body><div class="sphinxsidebar">Table of Contents</div>
          <div class="body" role="main">
  <section id="module-shutil">
<span id="shutil-high-level-file-operations"></span><h1><a class="reference internal" href="#module-shutil" title="shutil: High-level file operations, including copying."><code class="xref py py-mod docutils literal notranslate"><span class="pre">shutil</span></code></a> — High-level file operations<a class="headerlink" href="#module-shutil" title="Permalink to this heading">¶</a></h1>
<p><strong>Source code:</strong> <a class="reference external" href="https://github.com/python/cpython/tree/3.11/Lib/shutil.py">Lib/shutil.py</a></p>
<hr class="docutils" id="index-0" />
<p>The <a class="reference internal" href="#module-shutil" title="shutil: High-level file operations, including copying."><code class="xref py py-mod docutils literal notranslate"><span class="pre">shutil</span></code></a> module offers a number of high-level operations on files and
collections of files.</p>
<section id="directory-and-files-operations">
<span id="file-operations"></span><h2>Directory and files operations<a class="headerlink" href="#directory-and-files-operations" title="Permalink to this heading">¶</a></h2>
<dl class="py function">
<dt class="sig sig-object py" id="shutil.copyfileobj">
<span class="sig-prename descclassname"><span class="pre">shutil.</span></span><span class="sig-name descname"><span class="pre">copyfileobj</span></span><span class="sig-paren">(</span><em class="sig-param"><span class="n"><span class="pre">fsrc</span></span></em>, <em class="sig-param"><span class="n"><span class="pre">fdst</span></span></em><span class="optional">[</span>, <em class="sig-param"><span class="n"><span class="pre">length</span></span></em><span class="optional">]</span><span class="sig-paren">)</span><a class="headerlink" href="#shutil.copyfileobj" title="Permalink to this definition">¶</a></dt>
<dd><p>Copy the contents of the file-like object <em>fsrc</em> to the file-like object <em>fdst</em>.
The integer <em>length</em>, if given, is the buffer size.</p>
</dd></dl>

<dl class="py function">
<dt class="sig sig-object py" id="shutil.copymode">
<span class="sig-prename descclassname"><span class="pre">shutil.</span></span><span class="sig-name descname"><span class="pre">copymode</span></span><span class="sig-paren">(</span><em class="sig-param"><span class="n"><span class="pre">src</span></span></em>, <em class="sig-param"><span class="n"><span class="pre">dst</span></span></em>, <em class="sig-param"><span class="o"><span class="pre">*</span></span></em>, <em class="sig-param"><span class="n"><span class="pre">follow_symlinks</span></span><span class="o"><span class="pre">=</span></span><span class="default_value"><span class="pre">True</span></span></em><span class="sig-paren">)</span><a class="headerlink" href="#shutil.copymode" title="Permalink to this definition">¶</a></dt>
<dd><p>Copy the permission bits from <em>src</em> to <em>dst</em>.  The file contents, owner, and
group are unaffected.</p>
<p class="audit-hook">Raises an <a class="reference internal" href="sys.html#auditing"><span class="std std-ref">auditing event</span></a> <code class="docutils literal notranslate"><span class="pre">shutil.copymode</span></code> with arguments <code class="docutils literal notranslate"><span class="pre">src</span></code>, <code class="docutils literal notranslate"><span class="pre">dst</span></code>.</p>
<div class="versionchanged">
<p><span class="versionmodified changed">Changed in version 3.3: </span>Added <em>follow_symlinks</em> argument.</p>
</div>
</dd></dl>
</section>
</section>
          </div>
        </div>
      <div class="sphinxsidebar" role="navigation">shutil — High-level file operations</div>
</body></html>"""

GLOSSARY = """<div class="body" role="main"><section id="glossary"><h1>Glossary</h1>
<dl class="glossary">
<dt id="term-EAFP">EAFP<a class="headerlink" href="#term-EAFP" title="Permalink to this term">¶</a></dt><dd><p>Easier to ask for forgiveness than permission.  This common Python coding
style assumes the existence of valid keys or attributes.</p>
</dd>
<dt id="term-0">&gt;&gt;&gt;<a class="headerlink" href="#term-0" title="Permalink to this term">¶</a></dt><dd><p>The default Python prompt of the interactive shell.</p>
</dd>
</dl></section></div>"""

FAQ = """<div class="body" role="main"><section id="library-and-extension-faq"><h1>Library and Extension FAQ</h1>
<section id="how-do-i-copy-a-file">
<h3><a class="toc-backref" href="#id21" role="doc-backlink">How do I copy a file?</a><a class="headerlink" href="#how-do-i-copy-a-file" title="Permalink to this heading">¶</a></h3>
<p>The <a class="reference internal" href="../library/shutil.html#module-shutil" title="shutil: High-level file operations, including copying."><code class="xref py py-mod docutils literal notranslate"><span class="pre">shutil</span></code></a> module contains a <a class="reference internal" href="../library/shutil.html#shutil.copyfile" title="shutil.copyfile"><code class="xref py py-func docutils literal notranslate"><span class="pre">copyfile()</span></code></a> function.</p>
<div class="highlight-python3 notranslate"><div class="highlight"><pre><span></span><span class="n">shutil</span><span class="o">.</span><span class="n">copyfile</span><span class="p">(</span><span class="n">src</span><span class="p">,</span> <span class="n">dst</span><span class="p">)</span>
</pre></div></div>
<p>It also doesn’t copy file permissions and metadata.</p>
</section></section></div>"""

COPYFILEOBJ = (
    "Copy the contents of the file-like object fsrc to the file-like object fdst. "
    "The integer length, if given, is the buffer size."
)
COPYMODE = "Copy the permission bits from src to dst. The file contents, owner, and group are unaffected."


def test_build_on_excerpts():
    raw = {"library/shutil.html": SHUTIL, "glossary.html": GLOSSARY, "faq/library.html": FAQ}
    raw["library/stdtypes.html"] = SHUTIL.replace("shutil", "stdtypes")  # pydoc_topics' page: skipped
    api, titles, same, concepts = build(raw)
    assert [(p.query, p.pos, p.key) for p in api.pairs] == [
        ("shutil.copyfileobj(fsrc, fdst[, length])", COPYFILEOBJ, "pythondocs:shutil.copyfileobj"),
        ("shutil.copymode(src, dst, *, follow_symlinks=True)", COPYMODE, "pythondocs:shutil.copymode"),
    ]
    assert [(p.query, p.pos, p.key) for p in titles.pairs] == [
        (
            "The shutil module offers a number of high-level operations on files and collections of files.",
            "shutil — High-level file operations",
            "pythondocs:library/shutil.html#module-shutil",
        )
    ]  # the second section starts with a <dl>, not a paragraph
    for p in same.pairs:
        assert p.label == "shutil" and {p.query, p.pos} == {COPYFILEOBJ, COPYMODE}
    assert [(p.query, p.pos, p.key) for p in concepts.pairs] == [
        (
            "How do I copy a file?",
            "The shutil module contains a copyfile() function. It also doesn’t copy file permissions and metadata.",
            "pythondocs:faq:how do i copy a file?",
        ),
        (
            "EAFP",
            "Easier to ask for forgiveness than permission. This common Python coding style assumes the existence "
            "of valid keys or attributes.",
            "pythondocs:glossary:eafp",
        ),
    ]  # ">>>" has no letter: no pair


def test_real_pages():
    raw = installed(locate, "python3-doc is not installed: ")
    assert not SKIP_PAGES & set(raw) and "glossary.html" in raw and "library/shutil.html" in raw
    tasks = SOURCE.build(raw)
    text = Text(
        min_len=10, banned=("  ", "\n", "¶"), pattern=r"<(span|code|em|a|dt|dd|p) class=|</(span|code|em|dt|dd|p)>"
    )
    check_tasks(
        tasks,
        "pythondocs",
        [
            "pythondocs_signature_to_description",
            "pythondocs_paragraph_to_section_title",
            "pythondocs_same_module",
            "pythondocs_concept_to_explanation",
        ],
        categories=["retrieval", "summarization", "clustering", "retrieval"],
        instruction="Python",
        query=text,
        pos=text,
        # glossary terms are headwords (GIL)
        sides={"pythondocs_concept_to_explanation": (replace(text, min_len=0), text)},
    )
    api = {p.key: p.query for p in tasks[0].pairs}
    assert api["pythondocs:shutil.copyfileobj"] == "shutil.copyfileobj(fsrc, fdst[, length])"
