#!/usr/bin/env python3
"""Measure the length in lines of every C++ function definition (.cpp .h .cu .cuh .hpp).

Counting rule: a function's length runs from the line where its declaration starts (the first line
of the signature, return type, qualifiers and attributes included; a `template <...>` prefix does
not count) through the line of the closing brace of its body, both inclusive. A constructor's
member-initializer list counts. Lambdas and local classes count as part of the enclosing function.
Member functions defined in class/struct/union bodies (nested ones too) are reported on their own,
named with the enclosing classes (`UnitOptimizer::Impl::step`); namespaces are left out of names.

How: comments, string/char/raw-string literals and preprocessor lines (with their backslash
continuations) are blanked, keeping line numbers; the rest is tokenized and its braces walked with
a stack of namespace/class scopes. Each `{` at namespace or class scope is classified by the tokens
since the previous `;`, `{` or `}`: namespace / extern "C" (entered), class/struct/union (entered),
enum, brace initializer or macro call such as TEST_CASE("...") (skipped), or a function body: a
name followed by `(...)` and then only qualifiers (const, noexcept, override, `-> type`, `requires`,
`: member-inits`), with no top-level `=` before the name. Function bodies are skipped whole.

Usage: scripts/function-lengths.py [PATH ...] [--max N] [--top K] [--all] [--self-test]
"""
import argparse
import bisect
import os
import re
import sys

EXTS = ('.cpp', '.h', '.cu', '.cuh', '.hpp')
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRIP = re.compile(r"""(?P<raw>(?<!\w)(?:u8|[uUL])?R"(?P<d>[^\s()\\]{0,16})\(.*?\)(?P=d)")
    | //(?:\\\r?\n|[^\n])* | /\*.*?(?:\*/|\Z)
    | "(?:\\.|[^"\\\n])*"? | '(?:\\.|[^'\\\n])*'?
    | ^[ \t]*\#(?:\\\r?\n|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|[^\n])*
    | (?P<num>\b\d[\w.']*)""", re.S | re.M | re.X)  # literals, comments, directives, 1'000
TOKEN = re.compile(r'[A-Za-z_]\w*|\d[\w.\']*|::|->|\.\.\.|\S')
PAIRS = {'(': ')', '[': ']', '{': '}', '<': '>', '>': '<'}
NOT_NAMES = {'decltype', 'alignas', 'alignof', 'sizeof', 'noexcept', 'requires', 'throw', 'typeid',
             '__attribute__', '__declspec', '__launch_bounds__', 'static_assert', 'if', 'for',
             'while', 'switch', 'catch', 'return', 'void', 'int', 'char', 'bool', 'float', 'double',
             'long', 'short', 'unsigned', 'signed', 'auto'}
QUALIFIERS = {'const', 'volatile', '&', 'override', 'final', 'mutable', 'noexcept', 'throw',
              'constexpr', '__attribute__', '__declspec', 'alignas'}


def is_ident(t):
    return bool(re.match(r'[A-Za-z_]\w*$', t))


def is_macro(t):  # ALL_CAPS identifiers such as GENIE_HD or GENIE_API
    return bool(re.match(r'[A-Z_][A-Z0-9_]+$', t))


def tokenize(src):
    """(text, line) tokens of src with comments, literals and preprocessor lines blanked."""
    def blank(m):  # spaces for everything but newlines; numbers stay
        return m.group() if m.lastgroup == 'num' else re.sub(r'[^\n]', ' ', m.group())
    text = STRIP.sub(blank, src)
    nl = [m.start() for m in re.finditer('\n', text)]
    return [(m.group(), bisect.bisect_left(nl, m.start()) + 1) for m in TOKEN.finditer(text)]


def match(ts, i, step=1):
    """Index of the token closing the group that ts[i] opens (backwards when step is -1)."""
    depth, k = 0, i
    while 0 <= k < len(ts):
        depth += (ts[k] == ts[i]) - (ts[k] == PAIRS[ts[i]])
        if depth == 0:
            return k
        k += step
    return k - step


def top_level(ts):
    """(index, token) of the tokens outside () and [] groups, the groups' brackets included."""
    depth = 0
    for k, t in enumerate(ts):
        depth -= t in (')', ']')
        if depth == 0:
            yield k, t
        depth += t in ('(', '[')


def qual_name(ts, end):
    """The qualified name that ends just before index end (`A::B<T>::~f`): (name, start index)."""
    j, want = end - 1, True
    while j >= 0:
        if want and ts[j] == '>':  # template arguments, then the template's name
            j = match(ts, j, -1) - 1
        elif want and is_ident(ts[j]):
            j, want = j - 1 - (j > 0 and ts[j - 1] == '~'), False
        elif not want and ts[j] == '::':
            j, want = j - 1, True
        else:
            break
    return ''.join(ts[j + 1:end]).lstrip(':'), j + 1


def name_at(ts, p):
    """If the `(` at p can open a parameter list: (function name, its start, params index)."""
    o = next((k for k in range(p - 1, max(-1, p - 5), -1) if ts[k] == 'operator'), -1)
    if o == p - 1 and ts[p + 1:p + 3] == [')', '(']:
        sym, params = '()', p + 2
    elif o >= 0 and not {'::', '(', ')'} & set(ts[o + 1:p]):  # operator==, operator bool
        sym, params = ' '.join(ts[o + 1:p]), p
        sym = ' ' + sym if is_ident(ts[o + 1]) else sym.replace(' ', '')
    else:
        prev = ts[p - 1] if p else ''
        if not (is_ident(prev) and prev not in NOT_NAMES or prev == '>'):
            return None
        name, start = qual_name(ts, p)
        return (name, start, p) if name else None
    scope, start = qual_name(ts, o - 1) if o and ts[o - 1] == '::' else ('', o)
    return (scope + '::' if scope else '') + 'operator' + sym, start, params


def trailer_ok(ts):
    """Whether what follows a parameter list can precede a function body."""
    k = 0
    while k < len(ts):
        if ts[k] in ('->', ':', 'requires', 'try'):
            return True
        if ts[k:k + 2] == ['[', '[']:  # [[attribute]]
            k = match(ts, k) + 1
        elif ts[k] in QUALIFIERS or is_macro(ts[k]):
            k += 1
            if ts[k:k + 1] == ['('] and ts[k - 1] != '&':  # noexcept(...), __attribute__((...))
                k = match(ts, k) + 1
        else:
            return False
    return True


def has_assignment(ts):
    """A top-level `=` that is not part of ==, !=, <=, >= or of an operator's name."""
    return any(t == '=' and k and ts[k - 1] not in ('=', '!', '<', '>') and ts[k + 1:k + 2] != ['=']
               and 'operator' not in ts[max(0, k - 3):k] for k, t in top_level(ts))


def strip_prefix(ts, lines):
    """Where a declaration starts past `template <...> requires ...` and ALL_CAPS macro calls
    that end their line (GENIE_DECLARE_KERNEL(...) with no `;`)."""
    k = 0
    while k + 1 < len(ts):
        if ts[k] == 'template' and ts[k + 1] == '<':
            k = match(ts, k + 1) + 1
        elif ts[k] == 'requires' and k:  # constraint: (expr) or A::b<T>, joined by && or ||
            k += 1
            while k < len(ts):
                if ts[k] == '(':
                    k = match(ts, k) + 1
                else:
                    while k < len(ts) and (is_ident(ts[k]) or ts[k] == '::'):
                        k += 1
                    k = match(ts, k) + 1 if ts[k:k + 1] == ['<'] else k
                if ts[k:k + 2] not in (['&', '&'], ['|', '|']):
                    break
                k += 2
        elif is_macro(ts[k]) and ts[k + 1] == '(':
            q = match(ts, k + 1)
            if q + 1 >= len(ts) or lines[q + 1] == lines[q]:
                break
            k = q + 1
        else:
            break
    return k


def classify(stmt, class_name):
    """What a `{` opens after the tokens of stmt: ('ns',), ('class', name), ('func', name, line),
    ('macro',) for NAME(...) { with no return type, or ('skip',): initializers, enums, a_{x}."""
    ts, lines = [t for t, _ in stmt], [ln for _, ln in stmt]
    if not ts or sum((t in ('(', '[')) - (t in (')', ']')) for t in ts) > 0:
        return ('skip',)  # a brace inside parentheses: f(x = {}) or a lambda argument
    k = strip_prefix(ts, lines)
    ts, lines = ts[k:], lines[k:]
    if not ts:
        return ('skip',)
    if 'namespace' in ts[:2] or ts == ['extern']:  # extern "C" (the string is blanked)
        return ('ns',)
    head = ts[1:] if ts[0] in ('typedef', 'friend') else ts
    if head[:1] == ['enum']:
        return ('skip',)
    if head[:1] and head[0] in ('class', 'struct', 'union'):
        names = [t for t in head[1:] + [':'] if t != 'final']
        return ('class', qual_name(names, names.index(':'))[0])
    if is_ident(ts[0]) and ts[1:2] == ['('] and match(ts, 1) == len(ts) - 1 \
            and ts[0] != re.sub(r'<.*', '', class_name.split('::')[-1]):
        return ('macro',)  # not a constructor: TEST_CASE("...") {
    closed = False
    for k, t in top_level(ts):  # in a member-initializer list `: a_{x}`, `a_{` is not the body
        closed = closed or t == ')'
        if t == ':' and closed and (is_ident(ts[-1]) or ts[-1] == '>'):
            return ('skip',)
    for p, t in top_level(ts):
        cand = name_at(ts, p) if t == '(' else None
        if cand and trailer_ok(ts[match(ts, cand[2]) + 1:]) and not has_assignment(ts[:cand[1]]):
            return ('func', cand[0], lines[0])
    return ('skip',)


def find_functions(src):
    """[(name, first line, last line)] of the function definitions in C++ source text."""
    toks = tokenize(src)
    ts = [t for t, _ in toks]
    funcs, scopes, stmt, i = [], [], [], 0
    while i < len(toks):
        t = ts[i]
        if t == '{':
            classes = [s for s in scopes if s]
            kind = classify(stmt, classes[-1] if classes else '')
            if kind[0] in ('ns', 'class'):  # entered: a class scope names its members
                scopes.append(kind[1] if kind[0] == 'class' and kind[1] else None)
                stmt, i = [], i + 1
                continue
            end = match(ts, i)
            if kind[0] == 'func':
                funcs.append(('::'.join(classes + [kind[1]]), kind[2], toks[end][1]))
            # an initializer is part of a statement that goes on; a body or macro block ends one
            stmt = stmt + [('{}', toks[i][1])] if kind[0] == 'skip' else []
            i = end + 1
            continue
        if t in (';', '}') or t == ':' and [s for s, _ in stmt] in (['public'], ['private'],
                                                                     ['protected']):
            stmt = []
            if t == '}' and scopes:
                scopes.pop()
        else:
            stmt.append(toks[i])
        i += 1
    return funcs


def source_files(paths):
    """The C++ files under the given files/folders (relative to the cwd, else to the repository)."""
    files = []
    for p in paths:
        if not os.path.exists(p) and os.path.exists(os.path.join(ROOT, p)):
            p = os.path.join(ROOT, p)
        if os.path.isfile(p):
            files.append(p)
        elif os.path.isdir(p):
            for d, subdirs, names in os.walk(p):
                subdirs.sort()
                files += [os.path.join(d, f) for f in sorted(names) if f.endswith(EXTS)]
        else:
            sys.exit('function-lengths: no such file or folder: ' + p)
    return files


def shown(path):
    """A file's path relative to the repository when inside it."""
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    return path if rel.startswith('..') else rel


SELF_TESTS = [  # (what it checks, C++ source, [(name, first line, last line)])
    ('plain', 'int f(int a) {\n  return a;\n}\n', [('f', 1, 3)]),
    ('comments, strings, chars', '// void c() {\n/* void d() {\n} */\n'
     'void g() { auto s = "}{\\"{"; char c = \'{\', q = \'"\'; }\n', [('g', 4, 4)]),
    ('raw strings', 'void r() {\n  auto a = R"(}{)";\n  auto b = R"x(\n)" } {\n)x";\n}\n',
     [('r', 1, 6)]),
    ('macros, digit separators', '#define M(x) \\\n  void x() { \\\n  }\nint n = 1\'000;\n'
     'void h() {}\n', [('h', 5, 5)]),
    ('brace initializers, enums', 'std::vector<int> v = {1, 2};\nFoo f{1, 2};\n'
     'static const X t[] = {\n  {1, "a"},\n  {2, "b"},\n};\nenum class E : int { A, B };\n'
     'int z(int x = {}) { return x; }\n', [('z', 8, 8)]),
    ('control statements, lambdas, local classes', 'void k(int n) {\n  if (n) {\n  } else {\n  }\n'
     '  for (;;) { while (1) {} }\n  switch (n) { case 1: {} }\n  do {} while (0);\n'
     '  try {} catch (...) {}\n  auto l = [&](int y) { return y; };\n'
     '  struct Local { void m() {} };\n}\n', [('k', 1, 11)]),
    ('members, operators', 'namespace a { namespace {\nstruct S {\n  S() = default;\n'
     '  S(const S&) = delete;\n  int d();\n  S(int x) : a_{x}, b_(x), c_{} {\n  }\n  ~S() {}\n'
     '  struct In { int get() const noexcept { return 1; } };\n'
     '  bool operator==(const S& o) const { return a_ == o.a_; }\n'
     '  int operator()(int x) { return x; }\n  int& operator[](int i) { return a_; }\n'
     '  S& operator=(const S&) { return *this; }\n'
     '  explicit operator bool() const { return true; }\n  int a_, b_, c_;\n};\n'
     '}  // namespace\n}\n',
     [('S::S', 6, 7), ('S::~S', 8, 8), ('S::In::get', 9, 9), ('S::operator==', 10, 10),
      ('S::operator()', 11, 11), ('S::operator[]', 12, 12), ('S::operator=', 13, 13),
      ('S::operator bool', 14, 14)]),
    ('out-of-class definitions', 'struct A::Impl {\n  void step(int it) {\n  }\n};\n'
     'A::A(int x)\n    : b_(x),\n      c_{x} {\n}\nA::~A() {}\ntemplate <typename T>\n'
     'auto A::get() const -> T {\n  return T{};\n}\nvoid A::operator()(int e) {}\n'
     'bool operator<(const A& a, const A& b) { return a.x < b.x; }\n',
     [('A::Impl::step', 2, 3), ('A::A', 5, 8), ('A::~A', 9, 9), ('A::get', 11, 13),
      ('A::operator()', 14, 14), ('operator<', 15, 15)]),
    ('extern "C", CUDA, requires', 'extern "C" {\nvoid c_api() {}\n}\n'
     '__global__ void __launch_bounds__(256) kern(float* x) {\n}\n'
     'GENIE_HD inline float hd(float x) { return x; }\ntemplate <class T>\n'
     'requires std::is_integral_v<T>\nT req(T x) noexcept(true) requires(sizeof(T) > 1) {\n'
     '  return x;\n}\n', [('c_api', 2, 2), ('kern', 4, 5), ('hd', 6, 6), ('req', 9, 11)]),
    ('class members that are not functions', 'struct B final : public Base<int> {\n'
     '  std::function<void(int)> cb{[](int) {}};\n  int arr[2] = {1, 2};\n  Foo f{1, 2};\n'
     '  static constexpr auto g = [](int x) { return x; };\n'
     '  template <typename T> T get() const { return T{}; }\n'
     '  union U { int a; int geta() { return a; } };\n};\n'
     'auto lam = [](int x) {\n  return x;\n};\n',
     [('B::get', 6, 6), ('B::U::geta', 7, 7)]),
    ('macro calls, declarations', 'TEST_CASE("a test") {\n}\nGENIE_DECLARE_KERNEL(fill,\n'
     '  (float* y), (y))\nvoid after(int a,\n           int b) override final {\n}\n'
     'int decl(int x);\n', [('after', 5, 7)]),
]


def self_test():
    """Run the built-in snippets through the parser; exit status 1 on a mismatch."""
    failed = 0
    for what, src, want in SELF_TESTS:
        got = find_functions(src)
        if got != want:
            failed += 1
            print('self-test FAILED (%s)\n  want %s\n  got  %s' % (what, want, got))
    print('self-test: %d of %d cases passed' % (len(SELF_TESTS) - failed, len(SELF_TESTS)))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description='Lengths in lines of the C++ functions in PATHs.')
    ap.add_argument('paths', nargs='*', metavar='PATH',
                    help='files or folders (default: engine/ of this repository)')
    ap.add_argument('--max', type=int, metavar='N',
                    help='exit 1 when a function is longer than N lines')
    ap.add_argument('--top', type=int, default=10, metavar='K', help='print the K longest (10)')
    ap.add_argument('--all', action='store_true', help='print every function')
    ap.add_argument('--self-test', action='store_true',
                    help='check the parser on built-in C++ snippets')
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    files = source_files(args.paths or [os.path.join(ROOT, 'engine')])
    rows = []
    for path in files:
        with open(path, encoding='utf-8', errors='replace') as f:
            for name, first, last in find_functions(f.read()):
                rows.append((last - first + 1, shown(path), first, last, name))
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    for r in rows if args.all else rows[:args.top]:
        print('%7d  %s:%d-%d  %s' % r)
    print('%d functions measured in %d file%s' % (len(rows), len(files), 's'[len(files) == 1:]))
    if args.max is None:
        return 0
    long_ones = [r for r in rows if r[0] > args.max]
    if not long_ones:
        print('all %d functions are at most %d lines' % (len(rows), args.max))
        return 0
    print('%d functions are longer than %d lines:' % (len(long_ones), args.max))
    for r in long_ones:
        print('%7d  %s:%d-%d  %s' % r)
    return 1


if __name__ == '__main__':
    sys.exit(main())
