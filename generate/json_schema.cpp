#include "generate/json_schema.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>

#include "config/config.h"

namespace ragd {

namespace {

using J = nlohmann::ordered_json;
using Sym = Grammar::Sym;
using ByteSet = Grammar::ByteSet;
constexpr int64_t kInf = -1;  // an unbounded upper end in digit ranges
constexpr double kMaxBound = 1e17;
// Integers without an upper bound (and the integer part of unbounded numbers) have at most
// this many digits, so every generated number is finite and exact in a double, whatever
// parser reads it; exponents have at most two digits.
constexpr int kMaxDigits = 15;

[[noreturn]] void fail(const std::string& ptr, const std::string& msg) {
    throw Error(Error::Code::InvalidArgument, "schema " + ptr + ": " + msg);
}

// A byte set from a spec like "0-9", "13578" or "+-" ('-' is a range only between two
// characters).
ByteSet cls(std::string_view spec) {
    ByteSet s;
    for (size_t i = 0; i < spec.size(); ++i) {
        unsigned char a = static_cast<unsigned char>(spec[i]);
        if (i + 2 < spec.size() && spec[i + 1] == '-') {
            unsigned char b = static_cast<unsigned char>(spec[i + 2]);
            for (unsigned c = a; c <= b; ++c) s.set(c);
            i += 2;
        } else {
            s.set(a);
        }
    }
    return s;
}

ByteSet brange(unsigned char a, unsigned char b) {
    ByteSet s;
    for (unsigned c = a; c <= b; ++c) s.set(c);
    return s;
}

int64_t pow10(int n) {
    int64_t p = 1;
    for (int i = 0; i < n; ++i) p *= 10;
    return p;
}

int ndigits(int64_t n) {
    return int(std::to_string(n).size());
}

// Digit strings of equal length from x to y (x <= y), as sequences of byte sets.
void same_len(const std::string& x, const std::string& y, std::vector<ByteSet> prefix,
              std::vector<std::vector<ByteSet>>& out) {
    const size_t n = x.size();
    if (n == 1) {
        prefix.push_back(
            brange(static_cast<unsigned char>(x[0]), static_cast<unsigned char>(y[0])));
        out.push_back(std::move(prefix));
        return;
    }
    if (x[0] == y[0]) {
        prefix.push_back(cls(std::string(1, x[0])));
        same_len(x.substr(1), y.substr(1), std::move(prefix), out);
        return;
    }
    const std::string xr = x.substr(1), yr = y.substr(1);
    if (xr.find_first_not_of('0') == std::string::npos &&
        yr.find_first_not_of('9') == std::string::npos) {
        auto p = prefix;
        p.push_back(brange(static_cast<unsigned char>(x[0]), static_cast<unsigned char>(y[0])));
        for (size_t i = 1; i < n; ++i) p.push_back(cls("0-9"));
        out.push_back(std::move(p));
        return;
    }
    {
        auto p = prefix;
        p.push_back(cls(std::string(1, x[0])));
        same_len(xr, std::string(n - 1, '9'), std::move(p), out);
    }
    if (x[0] + 1 <= y[0] - 1) {
        auto p = prefix;
        p.push_back(
            brange(static_cast<unsigned char>(x[0] + 1), static_cast<unsigned char>(y[0] - 1)));
        for (size_t i = 1; i < n; ++i) p.push_back(cls("0-9"));
        out.push_back(std::move(p));
    }
    {
        auto p = prefix;
        p.push_back(cls(std::string(1, y[0])));
        same_len(std::string(n - 1, '0'), yr, std::move(p), out);
    }
}

bool is_annotation(const std::string& k) {
    static const std::set<std::string> a = {
        "title", "description", "default",   "examples",   "$comment",    "$schema", "$id",
        "id",    "readOnly",    "writeOnly", "deprecated", "definitions", "$defs"};
    return a.count(k) > 0;
}

bool is_supported(const std::string& k) {
    static const std::set<std::string> s = {"type",
                                            "properties",
                                            "required",
                                            "additionalProperties",
                                            "enum",
                                            "const",
                                            "items",
                                            "additionalItems",
                                            "prefixItems",
                                            "minItems",
                                            "maxItems",
                                            "minLength",
                                            "maxLength",
                                            "format",
                                            "minimum",
                                            "maximum",
                                            "exclusiveMinimum",
                                            "exclusiveMaximum",
                                            "$ref",
                                            "anyOf",
                                            "oneOf",
                                            "allOf"};
    return s.count(k) > 0;
}

std::string type_of(const J& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "boolean";
    if (v.is_number_integer()) return "integer";
    if (v.is_number_float()) {
        double d = v.get<double>();
        return std::isfinite(d) && std::floor(d) == d ? "integer" : "number";
    }
    if (v.is_string()) return "string";
    if (v.is_array()) return "array";
    return "object";
}

std::string escape_token(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '~')
            o += "~0";
        else if (c == '/')
            o += "~1";
        else
            o += c;
    }
    return o;
}

class Compiler {
  public:
    Compiler(const J& root, const SchemaOptions& o)
        : root_(root), o_(o), g_(std::make_shared<Grammar>()) {}

    std::shared_ptr<Grammar> run() {
        const size_t bytes = root_.dump().size();
        if (bytes > o_.max_schema_bytes)
            fail("#", "the schema is " + std::to_string(bytes) + " bytes, over the limit of " +
                          std::to_string(o_.max_schema_bytes));
        int r = value(root_, "#", 0);
        g_->finalize(r);
        return g_;
    }

  private:
    const J& root_;
    SchemaOptions o_;
    std::shared_ptr<Grammar> g_;
    std::map<std::string, int> refs_;
    std::map<int, int> opt_chain_;    // bounded string tails by length
    std::map<int, int> digit_chain_;  // bounded digit runs by length
    int any_ = -1, chr_ = -1, chr_star_ = -1, digits_ = -1, frac_ = -1, number_ = -1;
    int null_ = -1, bool_ = -1, str_any_ = -1, key_star_ = -1, date_ = -1, datetime_ = -1;

    int rule(const std::string& name) {
        if (g_->n_rules() >= o_.max_rules)
            fail(name, "the schema compiles to more than " + std::to_string(o_.max_rules) +
                           " grammar rules");
        return g_->add_rule(name);
    }
    void alt(int r, std::vector<Sym> seq) { g_->add_alt(r, seq); }
    Sym B(std::string_view spec) { return g_->bytes(cls(spec)); }
    std::vector<Sym> lit(std::string_view s) { return g_->literal(s); }
    static std::vector<Sym> cat(std::vector<Sym> a, const std::vector<Sym>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }

    // ---- shared building blocks ----
    int digits() {  // [0-9]*
        if (digits_ < 0) {
            digits_ = rule("<digits>");
            alt(digits_, {});
            alt(digits_, {B("0-9"), Grammar::ref(digits_)});
        }
        return digits_;
    }
    int digits_upto(int k) {  // [0-9]{0,k}
        auto it = digit_chain_.find(k);
        if (it != digit_chain_.end()) return it->second;
        int prev = -1;
        for (int j = 0; j <= k; ++j) {
            auto f = digit_chain_.find(j);
            if (f != digit_chain_.end()) {
                prev = f->second;
                continue;
            }
            int r = rule("<digits<=" + std::to_string(j) + ">");
            alt(r, {});
            if (j > 0) alt(r, {B("0-9"), Grammar::ref(prev)});
            digit_chain_[j] = r;
            prev = r;
        }
        return prev;
    }
    int chr() {  // one JSON string character (one code point)
        if (chr_ >= 0) return chr_;
        chr_ = rule("<char>");
        ByteSet plain = brange(0x20, 0x7F);
        plain.reset('"');
        plain.reset('\\');
        alt(chr_, {g_->bytes(plain)});
        alt(chr_, {B("\\"), B("\"\\/bfnrt")});
        Sym hex = B("0-9a-fA-F");
        alt(chr_, {B("\\"), B("u"), B("0-9a-cA-Ce-fE-F"), hex, hex, hex});
        alt(chr_, {B("\\"), B("u"), B("dD"), B("0-7"), hex, hex});
        Sym cont = g_->range(0x80, 0xBF);
        alt(chr_, {g_->range(0xC2, 0xDF), cont});
        alt(chr_, {g_->byte(0xE0), g_->range(0xA0, 0xBF), cont});
        ByteSet e3 = brange(0xE1, 0xEC);
        e3.set(0xEE);
        e3.set(0xEF);
        alt(chr_, {g_->bytes(e3), cont, cont});
        alt(chr_, {g_->byte(0xED), g_->range(0x80, 0x9F), cont});
        alt(chr_, {g_->byte(0xF0), g_->range(0x90, 0xBF), cont, cont});
        alt(chr_, {g_->range(0xF1, 0xF3), cont, cont, cont});
        alt(chr_, {g_->byte(0xF4), g_->range(0x80, 0x8F), cont, cont});
        return chr_;
    }
    int chr_star() {
        if (chr_star_ < 0) {
            int c = chr();
            chr_star_ = rule("<chars>");
            alt(chr_star_, {});
            alt(chr_star_, {Grammar::ref(c), Grammar::ref(chr_star_)});
        }
        return chr_star_;
    }
    int opt_chain(int k) {  // up to k characters
        auto it = opt_chain_.find(k);
        if (it != opt_chain_.end()) return it->second;
        int prev = -1;
        int from = 0;
        for (int j = k; j >= 0; --j) {
            auto f = opt_chain_.find(j);
            if (f != opt_chain_.end()) {
                prev = f->second;
                from = j + 1;
                break;
            }
        }
        int c = chr();
        for (int j = from; j <= k; ++j) {
            int r = rule("<chars<=" + std::to_string(j) + ">");
            alt(r, {});
            if (j > 0) alt(r, {Grammar::ref(c), Grammar::ref(prev)});
            opt_chain_[j] = r;
            prev = r;
        }
        return prev;
    }
    int str_any() {
        if (str_any_ < 0) {
            int s = chr_star();
            str_any_ = rule("<string>");
            alt(str_any_, {B("\""), Grammar::ref(s), B("\"")});
        }
        return str_any_;
    }
    int null_rule() {
        if (null_ < 0) {
            null_ = rule("<null>");
            alt(null_, lit("null"));
        }
        return null_;
    }
    int bool_rule() {
        if (bool_ < 0) {
            bool_ = rule("<boolean>");
            alt(bool_, lit("true"));
            alt(bool_, lit("false"));
        }
        return bool_;
    }
    int frac() {  // "." [0-9]+
        if (frac_ < 0) {
            int d = digits();
            frac_ = rule("<fraction>");
            alt(frac_, {B("."), B("0-9"), Grammar::ref(d)});
        }
        return frac_;
    }
    int number_any() {
        if (number_ >= 0) return number_;
        int f = frac();
        int ip = rule("<int-part>");
        alt(ip, {B("0")});
        alt(ip, {B("1-9"), Grammar::ref(digits_upto(kMaxDigits - 1))});
        int fo = rule("<fraction?>");
        alt(fo, {});
        alt(fo, {Grammar::ref(f)});
        int eo = rule("<exponent?>");
        alt(eo, {});
        alt(eo, {B("eE"), Grammar::ref(rule_sign()), B("0-9"), Grammar::ref(digits_upto(1))});
        number_ = rule("<number>");
        alt(number_, {Grammar::ref(ip), Grammar::ref(fo), Grammar::ref(eo)});
        alt(number_, {B("-"), Grammar::ref(ip), Grammar::ref(fo), Grammar::ref(eo)});
        return number_;
    }
    int rule_sign() {
        int r = rule("<sign?>");
        alt(r, {});
        alt(r, {B("+-")});
        return r;
    }
    int any() {
        if (any_ >= 0) return any_;
        any_ = rule("<any>");
        int s = str_any();
        int arr = rule("<array>"), more = rule("<array-more>");
        int obj = rule("<object>"), mem = rule("<member>"), omore = rule("<object-more>");
        alt(any_, {Grammar::ref(null_rule())});
        alt(any_, {Grammar::ref(bool_rule())});
        alt(any_, {Grammar::ref(number_any())});
        alt(any_, {Grammar::ref(s)});
        alt(any_, {Grammar::ref(arr)});
        alt(any_, {Grammar::ref(obj)});
        alt(arr, lit("[]"));
        alt(arr, {B("["), Grammar::ref(any_), Grammar::ref(more), B("]")});
        alt(more, {});
        alt(more, {B(","), Grammar::ref(any_), Grammar::ref(more)});
        alt(obj, lit("{}"));
        alt(obj, {B("{"), Grammar::ref(mem), Grammar::ref(omore), B("}")});
        alt(mem, {Grammar::ref(s), B(":"), Grammar::ref(any_)});
        alt(omore, {});
        alt(omore, {B(","), Grammar::ref(mem), Grammar::ref(omore)});
        return any_;
    }

    // ---- numbers ----
    // Alternatives for the integers a..b (b == kInf: no upper end), a >= 0.
    void nonneg(int r, int64_t a, int64_t b, const std::vector<Sym>& pre,
                const std::vector<Sym>& post) {
        const int la = ndigits(a);
        const int lb = b == kInf ? la : ndigits(b);
        std::vector<std::vector<ByteSet>> seqs;
        for (int l = la; l <= lb; ++l) {
            int64_t lo = l == la ? a : pow10(l - 1);
            int64_t hi = (b != kInf && l == lb) ? b : pow10(l) - 1;
            if (lo <= hi) same_len(std::to_string(lo), std::to_string(hi), {}, seqs);
        }
        for (auto& seq : seqs) {
            std::vector<Sym> s = pre;
            for (auto& bs : seq) s.push_back(g_->bytes(bs));
            alt(r, cat(s, post));
        }
        if (b == kInf && la < kMaxDigits) {  // longer than a, up to kMaxDigits digits
            std::vector<Sym> s = pre;
            s.push_back(B("1-9"));
            for (int i = 0; i < la; ++i) s.push_back(B("0-9"));
            s.push_back(Grammar::ref(digits_upto(kMaxDigits - la - 1)));
            alt(r, cat(s, post));
        }
    }

    struct Bounds {
        bool has_lo = false, has_hi = false, lo_ex = false, hi_ex = false;
        double lo = 0, hi = 0;
    };
    Bounds bounds(const J& s, const std::string& ptr) {
        Bounds b;
        auto num = [&](const char* k) {
            const J& v = s[k];
            if (!v.is_number()) fail(ptr + "/" + k, std::string("\"") + k + "\" must be a number");
            double d = v.get<double>();
            if (!(std::fabs(d) <= kMaxBound))
                fail(ptr + "/" + k, std::string("\"") + k + "\" beyond ±1e17 is unsupported");
            return d;
        };
        if (s.contains("minimum")) b.has_lo = true, b.lo = num("minimum");
        if (s.contains("maximum")) b.has_hi = true, b.hi = num("maximum");
        if (s.contains("exclusiveMinimum")) {
            const J& e = s["exclusiveMinimum"];
            if (e.is_boolean()) {
                b.lo_ex = e.get<bool>() && b.has_lo;
            } else {
                double d = num("exclusiveMinimum");
                if (!b.has_lo || d >= b.lo) b.has_lo = true, b.lo = d, b.lo_ex = true;
            }
        }
        if (s.contains("exclusiveMaximum")) {
            const J& e = s["exclusiveMaximum"];
            if (e.is_boolean()) {
                b.hi_ex = e.get<bool>() && b.has_hi;
            } else {
                double d = num("exclusiveMaximum");
                if (!b.has_hi || d <= b.hi) b.has_hi = true, b.hi = d, b.hi_ex = true;
            }
        }
        return b;
    }
    // Integers in [lo, hi] (either end optional) as alternatives of r; false if none.
    bool int_range(int r, bool has_lo, int64_t lo, bool has_hi, int64_t hi,
                   const std::vector<Sym>& post) {
        if (has_lo && has_hi && lo > hi) return false;
        bool any = false;
        if (!has_hi || hi >= 0) {
            int64_t a = has_lo ? std::max<int64_t>(lo, 0) : 0;
            nonneg(r, a, has_hi ? hi : kInf, {}, post);
            any = true;
        }
        if (!has_lo || lo < 0) {
            int64_t kmin = has_hi ? std::max<int64_t>(1, -hi) : 1;
            int64_t kmax = has_lo ? -lo : kInf;
            if (kmax == kInf || kmin <= kmax) {
                nonneg(r, kmin, kmax, {B("-")}, post);
                any = true;
            }
        }
        return any;
    }
    int integer_rule(const J& s, const std::string& ptr) {
        Bounds b = bounds(s, ptr);
        int r = rule(ptr + "<integer>");
        int64_t lo = 0, hi = 0;
        if (b.has_lo) lo = int64_t(b.lo_ex ? std::floor(b.lo) + 1 : std::ceil(b.lo));
        if (b.has_hi) hi = int64_t(b.hi_ex ? std::ceil(b.hi) - 1 : std::floor(b.hi));
        if (!int_range(r, b.has_lo, lo, b.has_hi, hi, {}))
            fail(ptr, "no integer satisfies minimum/maximum");
        return r;
    }
    int number_rule(const J& s, const std::string& ptr) {
        Bounds b = bounds(s, ptr);
        if (!b.has_lo && !b.has_hi) return number_any();
        int r = rule(ptr + "<number>");
        bool any = false;
        // Integers in range.
        int64_t lo = 0, hi = 0;
        if (b.has_lo) lo = int64_t(b.lo_ex ? std::floor(b.lo) + 1 : std::ceil(b.lo));
        if (b.has_hi) hi = int64_t(b.hi_ex ? std::ceil(b.hi) - 1 : std::floor(b.hi));
        if (!(b.has_lo && b.has_hi && lo > hi)) any |= int_range(r, b.has_lo, lo, b.has_hi, hi, {});
        // n.ddd with n >= 0: the value lies in [n, n+1), so n >= lo (> when exclusive) and
        // n + 1 <= hi.
        {
            int64_t a = b.has_lo ? std::max<int64_t>(
                                       0, int64_t(b.lo_ex ? std::floor(b.lo) + 1 : std::ceil(b.lo)))
                                 : 0;
            int64_t z = b.has_hi ? int64_t(std::floor(b.hi)) - 1 : 0;
            if (!b.has_hi)
                z = kInf;
            else if (z < a)
                z = -2;  // empty
            if (z != -2) {
                nonneg(r, a, z, {}, {Grammar::ref(frac())});
                any = true;
            }
        }
        // -k.ddd with k >= 0: the value lies in (-(k+1), -k], so -k <= hi (< when
        // exclusive) and -(k+1) >= lo.
        {
            int64_t a = b.has_hi ? std::max<int64_t>(0, int64_t(b.hi_ex ? std::floor(-b.hi) + 1
                                                                        : std::ceil(-b.hi)))
                                 : 0;
            int64_t z = b.has_lo ? int64_t(std::floor(-b.lo)) - 1 : 0;
            if (!b.has_lo)
                z = kInf;
            else if (z < a)
                z = -2;  // empty
            if (z != -2) {
                nonneg(r, a, z, {B("-")}, {Grammar::ref(frac())});
                any = true;
            }
        }
        if (!any) fail(ptr, "no number satisfies minimum/maximum");
        return r;
    }

    // ---- strings ----
    int count(const J& s, const char* k, const std::string& ptr) {
        const J& v = s[k];
        if (!v.is_number_integer() || v.get<int64_t>() < 0)
            fail(ptr + "/" + k, std::string("\"") + k + "\" must be a non-negative integer");
        int64_t n = v.get<int64_t>();
        if (n > o_.max_repeat)
            fail(ptr + "/" + k, std::string("\"") + k + "\" over " + std::to_string(o_.max_repeat) +
                                    " is unsupported");
        return int(n);
    }
    int date_rule() {
        if (date_ >= 0) return date_;
        Sym d = B("0-9");
        int md = rule("<month-day>");
        int day28 = rule("<day28>"), day30 = rule("<day30>"), day31 = rule("<day31>");
        alt(day28, {B("0"), B("1-9")});
        alt(day28, {B("1"), B("0-9")});
        alt(day28, {B("2"), B("0-8")});
        alt(day30, {Grammar::ref(day28)});
        alt(day30, {B("2"), B("9")});
        alt(day30, {B("3"), B("0")});
        alt(day31, {Grammar::ref(day30)});
        alt(day31, {B("3"), B("1")});
        alt(md, {B("0"), B("13578"), B("-"), Grammar::ref(day31)});
        alt(md, {B("1"), B("02"), B("-"), Grammar::ref(day31)});
        alt(md, {B("0"), B("469"), B("-"), Grammar::ref(day30)});
        alt(md, {B("1"), B("1"), B("-"), Grammar::ref(day30)});
        alt(md, {B("0"), B("2"), B("-"), Grammar::ref(day28)});
        int leap = rule("<leap-year>");
        alt(leap, {d, d, B("0"), B("48")});
        alt(leap, {d, d, B("2468"), B("048")});
        alt(leap, {d, d, B("13579"), B("26")});
        alt(leap, {B("02468"), B("048"), B("0"), B("0")});
        alt(leap, {B("13579"), B("26"), B("0"), B("0")});
        date_ = rule("<date>");
        alt(date_, {d, d, d, d, B("-"), Grammar::ref(md)});
        alt(date_, cat({Grammar::ref(leap)}, lit("-02-29")));
        return date_;
    }
    int datetime_rule() {
        if (datetime_ >= 0) return datetime_;
        int hh = rule("<hour>"), mm = rule("<minute>");
        alt(hh, {B("01"), B("0-9")});
        alt(hh, {B("2"), B("0-3")});
        alt(mm, {B("0-5"), B("0-9")});
        int fo = rule("<seconds-fraction?>");
        alt(fo, {});
        alt(fo, {Grammar::ref(frac())});
        int off = rule("<offset>");
        alt(off, {B("Z")});
        alt(off, {B("+-"), Grammar::ref(hh), B(":"), Grammar::ref(mm)});
        datetime_ = rule("<date-time>");
        alt(datetime_,
            {Grammar::ref(date_rule()), B("T"), Grammar::ref(hh), B(":"), Grammar::ref(mm), B(":"),
             Grammar::ref(mm), Grammar::ref(fo), Grammar::ref(off)});
        return datetime_;
    }
    int string_rule(const J& s, const std::string& ptr) {
        if (s.contains("format")) {
            const J& f = s["format"];
            if (!f.is_string()) fail(ptr + "/format", "\"format\" must be a string");
            if (s.contains("minLength") || s.contains("maxLength"))
                fail(ptr, "minLength/maxLength together with \"format\" are unsupported");
            int inner;
            if (f == "date")
                inner = date_rule();
            else if (f == "date-time")
                inner = datetime_rule();
            else
                fail(ptr + "/format", "unsupported format \"" + f.get<std::string>() +
                                          "\" (supported: date, date-time)");
            int r = rule(ptr + "<" + f.get<std::string>() + ">");
            alt(r, {B("\""), Grammar::ref(inner), B("\"")});
            return r;
        }
        int mn = s.contains("minLength") ? count(s, "minLength", ptr) : 0;
        int mx = s.contains("maxLength") ? count(s, "maxLength", ptr) : -1;
        if (mn == 0 && mx < 0) return str_any();
        if (mx >= 0 && mn > mx) fail(ptr, "minLength is above maxLength");
        int r = rule(ptr + "<string>");
        std::vector<Sym> seq{B("\"")};
        for (int i = 0; i < mn; ++i) seq.push_back(Grammar::ref(chr()));
        seq.push_back(Grammar::ref(mx < 0 ? chr_star() : opt_chain(mx - mn)));
        seq.push_back(B("\""));
        alt(r, seq);
        return r;
    }

    // ---- arrays ----
    int array_rule(const J& s, const std::string& ptr, int depth) {
        std::vector<int> prefix;
        int extra = -2;  // -2: any value, -1: none, else a rule
        auto sub = [&](const J& v, const std::string& p) -> int {
            if (v.is_boolean()) return v.get<bool>() ? -2 : -1;
            return value(v, p, depth + 1);
        };
        bool capped = false;  // an item schema false: no array reaches past it
        auto item_list = [&](const J& list, const std::string& p) {
            if (!list.is_array()) fail(p, "must be an array of schemas");
            for (size_t i = 0; i < list.size(); ++i) {
                int r = sub(list[i], p + "/" + std::to_string(i));
                if (r == -1) {
                    capped = true;
                    break;
                }
                prefix.push_back(r == -2 ? any() : r);
            }
        };
        if (s.contains("prefixItems")) {
            item_list(s["prefixItems"], ptr + "/prefixItems");
            if (s.contains("items")) extra = sub(s["items"], ptr + "/items");
        } else if (s.contains("items") && s["items"].is_array()) {
            item_list(s["items"], ptr + "/items");
            if (s.contains("additionalItems"))
                extra = sub(s["additionalItems"], ptr + "/additionalItems");
        } else if (s.contains("items")) {
            extra = sub(s["items"], ptr + "/items");
        }
        if (capped) extra = -1;
        if (extra == -2) extra = any();
        const int np = int(prefix.size());
        int mn = s.contains("minItems") ? count(s, "minItems", ptr) : 0;
        int mx = s.contains("maxItems") ? count(s, "maxItems", ptr) : -1;
        if (extra == -1) mx = mx < 0 ? np : std::min(mx, np);
        if (mx >= 0 && mn > mx) fail(ptr, "no array satisfies minItems/maxItems/items");
        auto item = [&](int j) { return j < np ? prefix[size_t(j)] : extra; };
        const int k = mx >= 0 ? mx : std::max({np, mn, 1});
        std::vector<int> rest(size_t(k) + 1, -1);
        for (int j = 1; j <= k; ++j)
            rest[size_t(j)] = rule(ptr + "<items" + std::to_string(j) + ">");
        for (int j = 1; j <= k; ++j) {
            int r = rest[size_t(j)];
            if (j >= mn) alt(r, {});
            if (mx < 0 && j == k) {
                if (extra >= 0) alt(r, {B(","), Grammar::ref(extra), Grammar::ref(r)});
            } else if (j < k && item(j) >= 0) {
                alt(r, {B(","), Grammar::ref(item(j)), Grammar::ref(rest[size_t(j) + 1])});
            }
        }
        int r = rule(ptr + "<array>");
        if (mn == 0) alt(r, lit("[]"));
        if (k >= 1 && item(0) >= 0 && (mx < 0 || mx >= 1))
            alt(r, {B("["), Grammar::ref(item(0)), Grammar::ref(rest[1]), B("]")});
        return r;
    }

    // ---- objects ----
    // A key that is none of names: ASCII without escapes, walked through the trie of the
    // names (as JSON-encoded bytes) so that a declared name can't be completed.
    int extra_key(const std::vector<std::string>& names, const std::string& ptr) {
        ByteSet keych = brange(0x20, 0x7E);
        keych.reset('"');
        keych.reset('\\');
        if (key_star_ < 0) {
            key_star_ = rule("<key-chars>");
            alt(key_star_, {});
            alt(key_star_, {g_->bytes(keych), Grammar::ref(key_star_)});
        }
        struct Node {
            std::map<unsigned char, int> kids;
            bool word = false;
        };
        std::vector<Node> t(1);
        for (const std::string& n : names) {
            int at = 0;
            for (char c : n) {
                unsigned char u = static_cast<unsigned char>(c);
                auto it = t[size_t(at)].kids.find(u);
                if (it == t[size_t(at)].kids.end()) {
                    t[size_t(at)].kids[u] = int(t.size());
                    at = int(t.size());
                    t.emplace_back();
                } else {
                    at = it->second;
                }
            }
            t[size_t(at)].word = true;
        }
        std::vector<int> rules(t.size());
        for (size_t i = 0; i < t.size(); ++i) rules[i] = rule(ptr + "<extra-key>");
        for (size_t i = 0; i < t.size(); ++i) {
            int r = rules[i];
            if (!t[i].word) alt(r, {B("\"")});
            ByteSet other = keych;
            for (auto& [c, kid] : t[i].kids) {
                if (!keych.test(c)) continue;
                other.reset(c);
                alt(r, {g_->byte(c), Grammar::ref(rules[size_t(kid)])});
            }
            if (other.any()) alt(r, {g_->bytes(other), Grammar::ref(key_star_), B("\"")});
        }
        int r = rule(ptr + "<extra-key>");
        alt(r, {B("\""), Grammar::ref(rules[0])});
        return r;
    }
    int object_rule(const J& s, const std::string& ptr, int depth) {
        std::vector<std::string> names;
        std::vector<int> vals;
        std::vector<bool> req;
        std::set<std::string> required;
        if (s.contains("required")) {
            const J& r = s["required"];
            if (!r.is_array()) fail(ptr + "/required", "\"required\" must be an array of strings");
            for (const J& n : r) {
                if (!n.is_string())
                    fail(ptr + "/required", "\"required\" must be an array of strings");
                required.insert(n.get<std::string>());
            }
        }
        int extra = o_.allow_unlisted_properties ? -2 : -1;
        if (s.contains("additionalProperties")) {
            const J& a = s["additionalProperties"];
            if (a.is_boolean())
                extra = a.get<bool>() ? -2 : -1;
            else
                extra = value(a, ptr + "/additionalProperties", depth + 1);
        }
        if (extra == -2) extra = any();
        if (s.contains("properties")) {
            const J& p = s["properties"];
            if (!p.is_object()) fail(ptr + "/properties", "\"properties\" must be an object");
            for (auto it = p.begin(); it != p.end(); ++it) {
                const std::string pp = ptr + "/properties/" + escape_token(it.key());
                const J& v = it.value();
                int r;
                if (v.is_boolean() && !v.get<bool>()) {
                    if (required.count(it.key()))
                        fail(pp, "a required property with the schema false can't be satisfied");
                    r = -1;
                } else {
                    r = v.is_boolean() ? any() : value(v, pp, depth + 1);
                }
                names.push_back(it.key());
                vals.push_back(r);
                req.push_back(required.count(it.key()) > 0);
            }
        }
        for (const std::string& n : required)
            if (std::find(names.begin(), names.end(), n) == names.end()) {
                if (extra < 0)
                    fail(ptr + "/required",
                         "required property \"" + n +
                             "\" is not allowed by properties/additionalProperties");
                names.push_back(n);
                vals.push_back(extra);
                req.push_back(true);
            }
        // Encoded key literals.
        std::vector<std::string> enc;
        for (const std::string& n : names) {
            std::string e = J(n).dump();
            enc.push_back(e.substr(1, e.size() - 2));
        }
        const size_t n = names.size();
        // t[i][x]: members i.. with x = 0 (nothing written yet) or 1 (a comma needed).
        std::vector<std::array<int, 2>> t(n + 1);
        for (size_t i = 0; i <= n; ++i)
            for (int x = 0; x < 2; ++x) t[i][size_t(x)] = rule(ptr + "<members>");
        for (int x = 0; x < 2; ++x) {
            int r = t[n][size_t(x)];
            alt(r, {});
            if (extra >= 0) {
                std::vector<Sym> seq;
                if (x) seq.push_back(B(","));
                seq.push_back(Grammar::ref(extra_key(enc, ptr)));
                seq.push_back(B(":"));
                seq.push_back(Grammar::ref(extra));
                seq.push_back(Grammar::ref(t[n][1]));
                alt(r, seq);
            }
        }
        for (size_t i = n; i-- > 0;)
            for (int x = 0; x < 2; ++x) {
                int r = t[i][size_t(x)];
                if (vals[i] >= 0) {
                    std::vector<Sym> seq;
                    if (x) seq.push_back(B(","));
                    seq = cat(seq, lit("\"" + enc[i] + "\":"));
                    seq.push_back(Grammar::ref(vals[i]));
                    seq.push_back(Grammar::ref(t[i + 1][1]));
                    alt(r, seq);
                }
                if (!req[i]) alt(r, {Grammar::ref(t[i + 1][size_t(x)])});
            }
        int r = rule(ptr + "<object>");
        alt(r, {B("{"), Grammar::ref(t[0][0]), B("}")});
        return r;
    }

    // ---- references ----
    int ref_rule(const J& ref, const std::string& ptr, int depth) {
        if (!ref.is_string()) fail(ptr + "/$ref", "\"$ref\" must be a string");
        const std::string r = ref.get<std::string>();
        auto it = refs_.find(r);
        if (it != refs_.end()) return it->second;
        if (r.empty() || r[0] != '#')
            fail(ptr + "/$ref",
                 "only $ref within the schema (\"#...\") is supported, not \"" + r + "\"");
        // Percent-decode, then walk the JSON pointer.
        std::string p;
        for (size_t i = 1; i < r.size(); ++i) {
            if (r[i] == '%' && i + 2 < r.size() + 0 && isxdigit(r[i + 1]) && isxdigit(r[i + 2])) {
                p += char(std::stoi(r.substr(i + 1, 2), nullptr, 16));
                i += 2;
            } else {
                p += r[i];
            }
        }
        const J* at = &root_;
        if (!p.empty()) {
            if (p[0] != '/') fail(ptr + "/$ref", "\"" + r + "\" is not a JSON pointer");
            size_t i = 1;
            for (;;) {
                size_t j = p.find('/', i);
                std::string tok = p.substr(i, j == std::string::npos ? std::string::npos : j - i);
                std::string dec;
                for (size_t k = 0; k < tok.size(); ++k) {
                    if (tok[k] == '~' && k + 1 < tok.size() &&
                        (tok[k + 1] == '0' || tok[k + 1] == '1')) {
                        dec += tok[k + 1] == '0' ? '~' : '/';
                        ++k;
                    } else {
                        dec += tok[k];
                    }
                }
                if (at->is_object() && at->contains(dec)) {
                    at = &(*at)[dec];
                } else if (at->is_array() && !dec.empty() &&
                           dec.find_first_not_of("0123456789") == std::string::npos &&
                           std::stoull(dec) < at->size()) {
                    at = &(*at)[std::stoull(dec)];
                } else {
                    fail(ptr + "/$ref", "\"" + r + "\" does not resolve within the schema");
                }
                if (j == std::string::npos) break;
                i = j + 1;
            }
        }
        int id = rule(r);
        refs_[r] = id;
        int inner = value(*at, r, depth + 1);
        alt(id, {Grammar::ref(inner)});
        return id;
    }

    // ---- oneOf: sound only when no value can match two branches ----
    // What a schema can match, conservatively: its types ("integer" counted as "number"),
    // its literal values when it is an enum/const, and for objects the required
    // properties pinned to literal values (a discriminator like "kind": "circle").
    struct Shape {
        std::set<std::string> types;
        bool has_literals = false;
        std::vector<J> literals;
        std::map<std::string, std::vector<J>> pinned;
    };
    const J* resolve(const J& s, int depth) {
        const J* at = &s;
        for (int i = 0;
             i < 16 && at->is_object() && at->contains("$ref") && (*at)["$ref"].is_string(); ++i) {
            std::string r = (*at)["$ref"].get<std::string>();
            if (r.empty() || r[0] != '#') return nullptr;
            try {
                at = &root_.at(J::json_pointer(r.substr(1)));
            } catch (...) {
                return nullptr;
            }
        }
        (void)depth;
        return at;
    }
    Shape shape(const J& s0, int depth) {
        static const std::set<std::string> all = {"null",  "boolean", "object",
                                                  "array", "string",  "number"};
        Shape sh;
        const J* sp = resolve(s0, depth);
        if (!sp || depth > 8 || !sp->is_object()) {
            sh.types = all;
            if (sp && sp->is_boolean() && !sp->get<bool>()) sh.types.clear();
            return sh;
        }
        const J& s = *sp;
        auto norm = [](std::string t) { return t == "integer" ? std::string("number") : t; };
        for (const char* kw : {"anyOf", "oneOf"})
            if (s.contains(kw) && s[kw].is_array()) {
                sh.has_literals = true;
                for (const J& b : s[kw]) {
                    Shape x = shape(b, depth + 1);
                    sh.types.insert(x.types.begin(), x.types.end());
                    if (!x.has_literals) sh.has_literals = false;
                    sh.literals.insert(sh.literals.end(), x.literals.begin(), x.literals.end());
                }
                if (!sh.has_literals) sh.literals.clear();
                return sh;
            }
        if (s.contains("allOf") && s["allOf"].is_array() && s["allOf"].size() == 1)
            return shape(s["allOf"][0], depth + 1);
        if (s.contains("enum") || s.contains("const")) {
            sh.has_literals = true;
            if (s.contains("const"))
                sh.literals.push_back(s["const"]);
            else if (s["enum"].is_array())
                for (const J& v : s["enum"]) sh.literals.push_back(v);
            for (const J& v : sh.literals) sh.types.insert(norm(type_of(v)));
            return sh;
        }
        if (s.contains("type")) {
            const J& t = s["type"];
            if (t.is_string())
                sh.types.insert(norm(t.get<std::string>()));
            else if (t.is_array())
                for (const J& v : t)
                    if (v.is_string()) sh.types.insert(norm(v.get<std::string>()));
        } else {
            sh.types = all;
        }
        if (s.contains("properties") && s["properties"].is_object() && s.contains("required") &&
            s["required"].is_array())
            for (const J& r : s["required"]) {
                if (!r.is_string() || !s["properties"].contains(r.get<std::string>())) continue;
                Shape p = shape(s["properties"][r.get<std::string>()], depth + 1);
                if (p.has_literals) sh.pinned[r.get<std::string>()] = p.literals;
            }
        return sh;
    }
    static bool disjoint_values(const std::vector<J>& a, const std::vector<J>& b) {
        for (const J& x : a)
            for (const J& y : b)
                if (x == y) return false;
        return true;
    }
    bool disjoint(const Shape& a, const Shape& b) {
        std::set<std::string> common;
        for (const std::string& t : a.types)
            if (b.types.count(t)) common.insert(t);
        if (common.empty()) return true;
        if (a.has_literals && b.has_literals) return disjoint_values(a.literals, b.literals);
        if (common == std::set<std::string>{"object"})
            for (const auto& [k, va] : a.pinned) {
                auto it = b.pinned.find(k);
                if (it != b.pinned.end() && disjoint_values(va, it->second)) return true;
            }
        return false;
    }
    void check_disjoint(const J& branches, const std::string& ptr) {
        std::vector<Shape> shapes;
        for (const J& b : branches) shapes.push_back(shape(b, 0));
        for (size_t i = 0; i < shapes.size(); ++i)
            for (size_t j = i + 1; j < shapes.size(); ++j)
                if (!disjoint(shapes[i], shapes[j]))
                    fail(ptr, "branches " + std::to_string(i) + " and " + std::to_string(j) +
                                  " may both match a value; oneOf is supported when its branches "
                                  "differ by type, by literal values, or by a required property "
                                  "with different const/enum values (else use anyOf)");
    }

    // ---- a schema ----
    int value(const J& s, const std::string& ptr, int depth) {
        if (depth > o_.max_depth)
            fail(ptr, "nesting deeper than " + std::to_string(o_.max_depth) + " levels");
        if (s.is_boolean()) {
            if (s.get<bool>()) return any();
            fail(ptr, "the schema false admits no value");
        }
        if (!s.is_object()) fail(ptr, "a schema must be an object or a boolean");
        for (auto it = s.begin(); it != s.end(); ++it)
            if (!is_supported(it.key()) && !is_annotation(it.key()))
                fail(ptr, "unsupported keyword \"" + it.key() + "\"");
        auto only = [&](const char* kw) {
            for (auto it = s.begin(); it != s.end(); ++it)
                if (it.key() != kw && !is_annotation(it.key()))
                    fail(ptr, std::string("\"") + kw + "\" together with \"" + it.key() +
                                  "\" is unsupported");
        };
        if (s.contains("$ref")) {
            only("$ref");
            return ref_rule(s["$ref"], ptr, depth);
        }
        if (s.contains("allOf")) {
            only("allOf");
            const J& a = s["allOf"];
            if (!a.is_array() || a.size() != 1)
                fail(ptr + "/allOf", "allOf is supported with exactly one schema");
            return value(a[0], ptr + "/allOf/0", depth + 1);
        }
        for (const char* kw : {"anyOf", "oneOf"})
            if (s.contains(kw)) {
                only(kw);
                const J& a = s[kw];
                if (!a.is_array() || a.empty())
                    fail(ptr + "/" + kw, std::string("\"") + kw + "\" must be a non-empty array");
                if (std::string(kw) == "oneOf") check_disjoint(a, ptr + "/oneOf");
                int r = rule(ptr + "/" + kw);
                bool any_branch = false;
                for (size_t i = 0; i < a.size(); ++i) {
                    if (a[i].is_boolean() && !a[i].get<bool>()) continue;
                    alt(r, {Grammar::ref(
                               value(a[i], ptr + "/" + kw + "/" + std::to_string(i), depth + 1))});
                    any_branch = true;
                }
                if (!any_branch) fail(ptr + "/" + kw, "no branch admits a value");
                return r;
            }
        // Types.
        static const std::vector<std::string> all = {"null",   "boolean", "object", "array",
                                                     "string", "number",  "integer"};
        std::vector<std::string> types;
        if (s.contains("type")) {
            const J& t = s["type"];
            auto add = [&](const J& v) {
                if (!v.is_string() ||
                    std::find(all.begin(), all.end(), v.get<std::string>()) == all.end())
                    fail(ptr + "/type", "unknown type " + v.dump());
                types.push_back(v.get<std::string>());
            };
            if (t.is_array()) {
                for (const J& v : t) add(v);
                if (types.empty()) fail(ptr + "/type", "an empty type list admits no value");
            } else {
                add(t);
            }
        } else {
            types = all;
        }
        auto has = [&](const std::string& t) {
            return std::find(types.begin(), types.end(), t) != types.end();
        };
        if (s.contains("enum") || s.contains("const")) {
            std::vector<J> vals;
            if (s.contains("const")) vals.push_back(s["const"]);
            if (s.contains("enum")) {
                const J& e = s["enum"];
                if (!e.is_array() || e.empty())
                    fail(ptr + "/enum", "\"enum\" must be a non-empty array");
                for (const J& v : e)
                    if (!s.contains("const") || v == s["const"]) vals.push_back(v);
                if (s.contains("const")) vals.erase(vals.begin());
            }
            int r = rule(ptr + (s.contains("enum") ? "/enum" : "/const"));
            bool any_val = false;
            for (const J& v : vals) {
                std::string ty = type_of(v);
                if (!(has(ty) || (ty == "integer" && has("number")))) continue;
                alt(r, lit(v.dump()));
                any_val = true;
            }
            if (!any_val) fail(ptr, "no enum/const value satisfies the schema");
            return r;
        }
        int r = rule(ptr);
        for (const std::string& t : types) {
            int sub;
            if (t == "null")
                sub = null_rule();
            else if (t == "boolean")
                sub = bool_rule();
            else if (t == "integer") {
                if (has("number")) continue;
                sub = integer_rule(s, ptr);
            } else if (t == "number")
                sub = number_rule(s, ptr);
            else if (t == "string")
                sub = string_rule(s, ptr);
            else if (t == "array")
                sub = array_rule(s, ptr, depth);
            else
                sub = object_rule(s, ptr, depth);
            alt(r, {Grammar::ref(sub)});
        }
        return r;
    }
};

}  // namespace

std::shared_ptr<Grammar> compile_json_schema(const nlohmann::ordered_json& schema,
                                             const SchemaOptions& options) {
    Compiler c(schema, options);
    return c.run();
}

std::shared_ptr<Grammar> json_object_grammar() {
    static const std::shared_ptr<Grammar> g = [] {
        SchemaOptions o;
        o.allow_unlisted_properties = true;
        return compile_json_schema(nlohmann::ordered_json{{"type", "object"}}, o);
    }();
    return g;
}

}  // namespace ragd
