//! The extraction as it was, through lol_html (a rewriter with a spec-following tokenizer and a simulated tree
//! builder), as the oracle of [`super::html_text`]'s walk: the same text and title for tricky markup, and for
//! every page of the real corpora when `INTAKE_TEST_CORPORA` is set (`./run-tests` sets it).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use lol_html::html_content::TextType;
use lol_html::{HtmlRewriter, MemorySettings, Settings, doc_text, element};

use super::{Collapser, Extracted, Part, content_else_whole, extract_html, has_title_tag, part};

/// How deep the walk is in chrome and in main content (element handlers count, end-tag handlers uncount).
#[derive(Default)]
struct Depth {
    chrome: Cell<u32>,
    main: Cell<u32>,
}

/// `extract_html` as it was.
fn by_lol_html(html: &[u8]) -> Extracted {
    content_else_whole(html, lol_html_with)
}

fn lol_html_with(html: &[u8], strip_chrome: bool) -> Extracted {
    let content = RefCell::new(Collapser::with_capacity(0));
    let main = RefCell::new(Collapser::with_capacity(0));
    let title = RefCell::new(Collapser::with_capacity(0));
    let title_done = Cell::new(!has_title_tag(html));
    let depth = Rc::new(Depth::default());
    let framing = depth.clone();
    let mut settings = Settings::new()
        .with_memory_settings(MemorySettings::new().with_max_allowed_memory_usage(16 << 20))
        .with_strict(false);
    if strip_chrome {
        settings = settings.append_element_content_handler(element!(
            "nav, aside, header, footer, main, div[role]",
            move |el| {
                let tag = el.tag_name();
                let role = if tag == "div" { el.get_attribute("role") } else { None };
                match part(&tag, role.as_deref(), framing.main.get() > 0) {
                    Some(Part::Chrome) => count(el, &framing, |d| &d.chrome),
                    Some(Part::Main) => count(el, &framing, |d| &d.main),
                    None => {}
                }
                Ok(())
            }
        ));
    }
    let settings = settings.append_document_content_handler(doc_text!(|chunk| {
        match chunk.text_type() {
            TextType::Data => {
                if depth.chrome.get() == 0 {
                    content.borrow_mut().push_html(chunk.as_str());
                    if depth.main.get() > 0 {
                        main.borrow_mut().push_html(chunk.as_str());
                    }
                }
                if chunk.last_in_text_node() {
                    content.borrow_mut().push_break();
                    main.borrow_mut().push_break();
                }
            }
            TextType::RCData if !title_done.get() => {
                title.borrow_mut().push_html(chunk.as_str());
                title_done.set(chunk.last_in_text_node());
            }
            _ => {}
        }
        Ok(())
    }));
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let _ = rewriter.write(html).and_then(|()| rewriter.end());
    let (content, main) = (content.into_inner().finish(), main.into_inner().finish());
    let text = if main.len() * 4 >= content.len() && !main.is_empty() { main } else { content };
    let title = title.into_inner().finish();
    Extracted { title: (!title.is_empty()).then_some(title), text, ..Extracted::default() }
}

/// One level deeper while inside `el`: the end tag's handler comes back up.
fn count(el: &mut lol_html::html_content::Element<'_, '_>, depth: &Rc<Depth>, level: fn(&Depth) -> &Cell<u32>) {
    let Some(handlers) = el.end_tag_handlers() else { return };
    let up = depth.clone();
    level(depth).set(level(depth).get() + 1);
    handlers.push(Box::new(move |_end| {
        level(&up).set(level(&up).get().saturating_sub(1));
        Ok(())
    }));
}

#[test]
fn the_walk_reads_tricky_markup_as_lol_html_does() {
    let cases: &[&str] = &[
        "<p>a<!-- hidden --> b<!----> c<!--> d<!---> e<!-- x --!> f <!-- never closed",
        "<!DOCTYPE html><?xml version='1.0'?><p>a</> b</ c> d<![CDATA[not cdata]]> e",
        "<p>x<svg><title>icon</title><desc>shape</desc><![CDATA[ raw ]]><text>svg text</text></svg> y",
        "<svg><foreignObject><style>p{}</style><p>inside</p></foreignObject><script>s()</script></svg>after",
        "<math><mi>x</mi><mtext>words</mtext><annotation-xml encoding='text/html'><b>html</b></annotation-xml></math>",
        "<svg><p>breaks out</p><font color=red>red</font><font>plain</font></svg>",
        "<svg><g/><path d='M0 0'/><title>t</title></svg><svg/><p>after a self-closing svg",
        "<title>One &amp; Two</title><TEXTAREA>typed &lt;</TEXTAREA><title>second</title>",
        "<script>if (a < b && c > d) document.write('</scr' + 'ipt>')</script>text<style>a{}</style>",
        "<SCRIPT type=x>x</SCRIPT >after<noscript><p>no</p></noscript><xmp><b>raw</b></xmp><iframe>f</iframe>",
        "<p title='a > b' data-x=\"c > d\" e=f>quoted</p><a href=/x/>link</a><br/>br",
        "<nav>menu<div>x</nav>after nav<div role=main>main<div>inner</div></div>tail",
        "<div class=x><nav>n</div>popped with the div<main><header>h</header>body<footer>f</footer></main>",
        "<div role=' Navigation '>crumbs</div><div role=\"search\">s</div><div ROLE=main>M</div><aside>a</aside>",
        "<main>short</main><p>a long body of text outside the main element, much longer than it",
        "<nav><p>only navigation, never closed",
        "<header><nav>x</nav></header><section><header>sec</header>text</section></unknown></nav>",
        "&lt;p&gt; &amp;amp; &#x41;&#66; &nbsp;&copy &bogus; &#0; &#xD800; &",
        "<p>unclosed <b>bold <i>text</p></div></span> tail &bogus; <",
        "a < b > c <3 <= </ <a",
        "<plaintext><p>everything after is plain",
        "<textarea>first rcdata</textarea><title>t</title>",
        "<p>\u{a0}nbsp\u{3000}ideographic\u{2028}line</p>",
        "<div\n role\n=\nmain\n>spaced attributes</div>",
        "<p><nav/>self-closing nav in html still opens</p>text",
        "<p>a</p\n>b</p x=y>c",
        "<table><tr><td>1<td>2</table><ul><li>one<li>two</ul>",
        "<div><div><div>deep</div></div></div></div></div>stray ends",
        "<!---->x<!-- - -- --->y<!--->z",
        "<svg><math><mi>m</mi></math></svg><math><svg>s</svg></math>",
        "<header>page header</header><main><article><header><h1>Title</h1></header>body</article></main>",
        "<script><!--<script>x</script>y--></script>after double-escaped script",
        "<script><!-- a </script> b -->c</script>d",
        "<script><!--</script>x",
        "<script><!--<script></script>--></script>y",
        "<script><!-- <SCRIPT>a</SCRIPT> --></script>z",
        "<script>a<!-->b</script>c",
        "<script><!--<script>never closed</script>still script",
        "<script><!--<scripts></script>ended",
        "<script><!----><script></script>after",
        "<style><!-- </style> --></style>e",
        "<title><b>not a tag</b></title ><textarea></textarea x>f",
        "<svg><script>svg script</script><style>svg style</style></svg>g",
        "<svg><title><style>x</style>y</title></svg>",
        "<math><annotation-xml encoding=TEXT/HTML><style>s</style>z</annotation-xml></math>",
        "<svg><desc/><p>q</p></svg>",
        "<p>a<!-- x -- y -->b<!--a--!>c",
        "<a\tb=c\x0c>form feed</a>",
        "<div role>empty role</div><div role=''>x</div><nav role=main>nav main</nav>",
        "<main><main>twice</main>once</main><nav><nav>n</nav>m</nav>out",
        "<DIV ROLE=NAVIGATION>upper</DIV>visible",
        "<p>x</P><NAV>y</nav>z",
        "<iframe><p>in iframe</p></iframe><noembed>n</noembed><noframes>f</noframes>w",
        "<ns:tag>namespaced</ns:tag><x-custom>custom</x-custom>",
        "<div>a<span>b</div>c</span>d",
    ];
    for html in cases {
        assert_eq!(extract_html(html.as_bytes()), by_lol_html(html.as_bytes()), "{html}");
    }
    let broken_utf8 = b"<title>caf\xe9</title><p>na\xefve \xff\xfe text</p>";
    assert_eq!(extract_html(broken_utf8), by_lol_html(broken_utf8));
}

/// Documents strung together from pieces of tricky markup (a fixed seed: the same documents every run; a million
/// of them, and 200,000 of up to 200 pieces with another seed, read the same when the walk was written).
#[test]
fn random_markup_reads_as_lol_html_does() {
    const PIECES: &[&str] = &[
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<div role=main>",
        "<div role=navigation>",
        "<nav>",
        "</nav>",
        "<main>",
        "</main>",
        "<header>",
        "</header>",
        "<footer>",
        "</footer>",
        "<aside>",
        "</aside>",
        "<span>",
        "</span>",
        "<svg>",
        "</svg>",
        "<math>",
        "</math>",
        "<title>",
        "</title>",
        "<textarea>",
        "</textarea>",
        "<script>",
        "</script>",
        "<style>",
        "</style>",
        "<noscript>",
        "</noscript>",
        "<!--",
        "-->",
        "--!>",
        "<![CDATA[",
        "]]>",
        "<foreignObject>",
        "</foreignObject>",
        "<desc>",
        "</desc>",
        "<mi>",
        "</mi>",
        "<annotation-xml encoding=text/html>",
        "</annotation-xml>",
        "<font color=red>",
        "<b>",
        "</b>",
        "<br/>",
        "<img src='a>b'>",
        "<input>",
        "<g/>",
        "<!DOCTYPE html>",
        "<?pi?>",
        "</>",
        "</ x>",
        "<",
        ">",
        "&amp;",
        "&lt;",
        "&",
        "&nbsp;",
        " ",
        "\n",
        "-",
        "--",
        "<!",
        "/",
        "=",
        "'",
        "\"",
        "word",
        "text",
        "caf\u{e9}",
        "\u{3000}",
        "<p title=\"x>y\">",
        "<DIV ROLE=MAIN>",
        "</DIV>",
        "<Script>",
        "</SCRIPT>",
        "<plaintext>",
        "</br>",
        "<mtext>",
        "</mtext>",
        "<font face=x>",
        "<font>",
        "</font>",
        "\t",
        "<a href=/x/>",
        "<textarea/>",
        "<title/>",
        "<nav/>",
        "<svg/>",
        "<!-->",
        "<!--->",
        "<xmp>",
        "</xmp>",
        "<iframe>",
        "</iframe>",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..30_000 {
        let pieces = 1 + next() % 60;
        let html: String = (0..pieces).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
        assert_eq!(extract_html(html.as_bytes()), by_lol_html(html.as_bytes()), "{html:?}");
    }
}

/// Every page of the kernel's and the JDK's documentation (`./run-tests` fetches them): the same text and title.
#[test]
fn the_walk_reads_the_real_corpora_as_lol_html_does() {
    let Some(corpora) = std::env::var_os("INTAKE_TEST_CORPORA") else {
        eprintln!("INTAKE_TEST_CORPORA is not set (./run-tests sets it): skipped");
        return;
    };
    let corpora = std::path::PathBuf::from(corpora);
    let mut pages = 0;
    for root in
        ["linux-doc-6.1/usr/share/doc/linux-doc-6.1/html", "openjdk-17-doc/usr/share/doc/openjdk-17-jre-headless/api"]
    {
        let mut dirs = vec![corpora.join(root)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "html") {
                    let html = std::fs::read(&path).unwrap();
                    assert_eq!(extract_html(&html), by_lol_html(&html), "{}", path.display());
                    pages += 1;
                }
            }
        }
    }
    assert!(pages > 13_000, "only {pages} pages were read");
}
