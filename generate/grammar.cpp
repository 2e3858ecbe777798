#include "generate/grammar.h"

#include <algorithm>
#include <functional>
#include <map>

#include "config/config.h"
#include "generate/tokenizer.h"

namespace ragd {

namespace {

[[noreturn]] void invalid(const std::string& msg) {
    throw Error(Error::Code::InvalidArgument, msg);
}

uint32_t add_min(uint32_t a, uint32_t b) {
    if (a == Grammar::kInfinite || b == Grammar::kInfinite) return Grammar::kInfinite;
    uint64_t s = uint64_t(a) + b;
    return s >= Grammar::kInfinite ? Grammar::kInfinite - 1 : uint32_t(s);
}

}  // namespace

// ---- Grammar ---------------------------------------------------------------------------

int Grammar::add_rule(std::string name) {
    if (final_) invalid("grammar: add_rule after finalize");
    rules_.emplace_back();
    names_.push_back(std::move(name));
    return int(rules_.size()) - 1;
}

void Grammar::add_alt(int rule, const std::vector<Sym>& seq) {
    if (final_ || rule < 0 || rule >= n_rules()) invalid("grammar: bad add_alt");
    rules_[size_t(rule)].push_back(uint32_t(syms_.size()));
    for (const Sym& s : seq)
        if (s.kind != Sym::End) syms_.push_back(s);
    syms_.push_back({Sym::End, 0});
}

Grammar::Sym Grammar::bytes(const ByteSet& set) {
    std::string k = set.to_string();
    auto it = set_ids_.find(k);
    if (it != set_ids_.end()) return {Sym::Bytes, it->second};
    uint32_t id = uint32_t(sets_.size());
    sets_.push_back(set);
    set_ids_.emplace(std::move(k), id);
    return {Sym::Bytes, id};
}

Grammar::Sym Grammar::byte(unsigned char c) {
    ByteSet s;
    s.set(c);
    return bytes(s);
}

Grammar::Sym Grammar::range(unsigned char lo, unsigned char hi) {
    ByteSet s;
    for (unsigned c = lo; c <= hi; ++c) s.set(c);
    return bytes(s);
}

std::vector<Grammar::Sym> Grammar::literal(std::string_view s) {
    std::vector<Sym> out;
    out.reserve(s.size());
    for (char c : s) out.push_back(byte(static_cast<unsigned char>(c)));
    return out;
}

void Grammar::finalize(int root) {
    if (final_) return;
    if (root < 0 || root >= n_rules()) invalid("grammar: bad root rule");
    root_ = root;
    const size_t nr = rules_.size();

    // Rules reachable from the root.
    std::vector<uint8_t> reach(nr, 0);
    std::vector<int> todo{root};
    reach[size_t(root)] = 1;
    while (!todo.empty()) {
        int r = todo.back();
        todo.pop_back();
        for (uint32_t p : rules_[size_t(r)])
            for (; syms_[p].kind != Sym::End; ++p)
                if (syms_[p].kind == Sym::Rule && !reach[syms_[p].arg]) {
                    reach[syms_[p].arg] = 1;
                    todo.push_back(int(syms_[p].arg));
                }
    }

    // Minimum derivable length per rule: a fixpoint from "infinite" down.
    rule_min_.assign(nr, kInfinite);
    auto alt_min = [&](uint32_t p) {
        uint32_t m = 0;
        for (; syms_[p].kind != Sym::End; ++p)
            m = add_min(m, syms_[p].kind == Sym::Bytes ? 1 : rule_min_[syms_[p].arg]);
        return m;
    };
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t r = 0; r < nr; ++r)
            for (uint32_t p : rules_[r]) {
                uint32_t m = alt_min(p);
                if (m < rule_min_[r]) {
                    rule_min_[r] = m;
                    changed = true;
                }
            }
    }
    for (size_t r = 0; r < nr; ++r)
        if (reach[r] && rule_min_[r] == kInfinite)
            invalid("recursion without a base case at " + names_[r] +
                    ": no finite value can satisfy it");

    // Left recursion: a rule reaching itself through nullable prefixes only.
    std::vector<std::vector<uint32_t>> first(nr);
    for (size_t r = 0; r < nr; ++r)
        for (uint32_t p : rules_[r])
            for (; syms_[p].kind == Sym::Rule; ++p) {
                first[r].push_back(syms_[p].arg);
                if (rule_min_[syms_[p].arg] != 0) break;
            }
    std::vector<uint8_t> color(nr, 0);  // 0 new, 1 on the path, 2 done
    std::function<void(uint32_t)> dfs = [&](uint32_t r) {
        color[r] = 1;
        for (uint32_t s : first[r]) {
            if (color[s] == 1)
                invalid("left recursion at " + names_[s] +
                        ": a $ref reaches itself before any value is written");
            if (color[s] == 0) dfs(s);
        }
        color[r] = 2;
    };
    for (size_t r = 0; r < nr; ++r)
        if (reach[r] && color[r] == 0) dfs(uint32_t(r));

    pos_min_.assign(syms_.size(), 0);
    for (size_t i = syms_.size(); i-- > 0;) {
        if (syms_[i].kind == Sym::End) {
            pos_min_[i] = 0;
            continue;
        }
        uint32_t here = syms_[i].kind == Sym::Bytes ? 1 : rule_min_[syms_[i].arg];
        pos_min_[i] = add_min(here, pos_min_[i + 1]);
    }
    final_ = true;
}

// ---- GrammarVocab ----------------------------------------------------------------------

GrammarVocab::GrammarVocab(const Tokenizer& tok) {
    const int32_t n = tok.n_vocab();
    pieces_.resize(size_t(n));
    for (int32_t id = 0; id < n; ++id) {
        pieces_[size_t(id)] = tok.piece(id);
        if (tok.is_end_of_generation(id)) eog_.push_back(id);
    }
    build();
}

GrammarVocab::GrammarVocab(std::vector<std::string> pieces, std::vector<int32_t> eog)
    : pieces_(std::move(pieces)), eog_(std::move(eog)) {
    build();
}

void GrammarVocab::build() {
    eog_flag_.assign(pieces_.size(), 0);
    for (int32_t id : eog_)
        if (id >= 0 && size_t(id) < pieces_.size()) eog_flag_[size_t(id)] = 1;
    // Build a pointer trie, then flatten it depth-first with sorted children.
    struct B {
        std::map<uint8_t, uint32_t> kids;
        std::vector<int32_t> toks;
    };
    std::vector<B> b(1);
    for (size_t id = 0; id < pieces_.size(); ++id) {
        const std::string& p = pieces_[id];
        if (p.empty() || eog_flag_[id]) continue;
        uint32_t n = 0;
        for (char c : p) {
            uint8_t u = static_cast<uint8_t>(c);
            auto it = b[n].kids.find(u);
            if (it == b[n].kids.end()) {
                uint32_t nn = uint32_t(b.size());
                b[n].kids.emplace(u, nn);
                b.emplace_back();
                n = nn;
            } else {
                n = it->second;
            }
        }
        b[n].toks.push_back(int32_t(id));
    }
    nodes_.assign(b.size(), Node{});
    for (size_t i = 0; i < b.size(); ++i) {
        Node& nd = nodes_[i];
        nd.first_child = uint32_t(child_byte_.size());
        nd.n_children = uint32_t(b[i].kids.size());
        for (auto& [c, k] : b[i].kids) {
            child_byte_.push_back(c);
            child_node_.push_back(k);
        }
        nd.first_token = uint32_t(node_tokens_.size());
        nd.n_tokens = uint32_t(b[i].toks.size());
        node_tokens_.insert(node_tokens_.end(), b[i].toks.begin(), b[i].toks.end());
    }
}

// ---- GrammarMatcher --------------------------------------------------------------------

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar) : g_(std::move(grammar)) {
    if (!g_ || !g_->final_) invalid("grammar: matcher needs a finalized grammar");
    for (uint32_t a : g_->rules_[size_t(g_->root_)]) expand(Stack{a}, stacks_);
    normalize(stacks_);
}

void GrammarMatcher::normalize(State& st) {
    std::sort(st.begin(), st.end());
    st.erase(std::unique(st.begin(), st.end()), st.end());
}

void GrammarMatcher::expand(Stack s, State& out) const {
    const auto& syms = g_->syms_;
    for (;;) {
        if (s.empty()) {
            out.push_back(std::move(s));
            return;
        }
        const uint32_t p = s.back();
        const Grammar::Sym sym = syms[p];
        if (sym.kind == Grammar::Sym::End) {
            s.pop_back();
            continue;
        }
        if (sym.kind == Grammar::Sym::Bytes) {
            out.push_back(std::move(s));
            return;
        }
        // A rule reference: the caller continues after it (or not at all: tail call).
        s.back() = p + 1;
        if (syms[p + 1].kind == Grammar::Sym::End) s.pop_back();
        if (s.size() >= kMaxDepth) return;
        const auto& alts = g_->rules_[sym.arg];
        for (size_t i = 0; i + 1 < alts.size(); ++i) {
            Stack t = s;
            t.push_back(alts[i]);
            expand(std::move(t), out);
        }
        if (alts.empty()) return;
        s.push_back(alts.back());
    }
}

void GrammarMatcher::advance(const State& in, unsigned char b, State& out) const {
    out.clear();
    const auto& syms = g_->syms_;
    for (const Stack& s : in) {
        if (s.empty()) continue;
        const Grammar::Sym sym = syms[s.back()];
        if (!g_->sets_[sym.arg].test(b)) continue;
        Stack t = s;
        t.back() += 1;
        expand(std::move(t), out);
    }
    if (out.size() > 1) normalize(out);
}

uint32_t GrammarMatcher::stack_min(const Stack& s) const {
    uint32_t m = 0;
    for (uint32_t p : s) m = add_min(m, g_->pos_min_[p]);
    return m;
}

uint32_t GrammarMatcher::state_min(const State& st) const {
    uint32_t best = Grammar::kInfinite;
    for (const Stack& s : st) best = std::min(best, stack_min(s));
    return best;
}

bool GrammarMatcher::accept(std::string_view bytes) {
    State cur = stacks_, next;
    for (char c : bytes) {
        advance(cur, static_cast<unsigned char>(c), next);
        if (next.empty()) return false;
        cur.swap(next);
    }
    stacks_.swap(cur);
    return true;
}

bool GrammarMatcher::can_accept(std::string_view bytes) const {
    State cur = stacks_, next;
    for (char c : bytes) {
        advance(cur, static_cast<unsigned char>(c), next);
        if (next.empty()) return false;
        cur.swap(next);
    }
    return true;
}

bool GrammarMatcher::is_complete() const {
    for (const Stack& s : stacks_)
        if (s.empty()) return true;
    return false;
}

bool GrammarMatcher::is_terminal() const {
    return stacks_.size() == 1 && stacks_[0].empty();
}

uint32_t GrammarMatcher::min_remaining() const {
    return state_min(stacks_);
}

bool GrammarMatcher::allows_token(const GrammarVocab& v, int32_t id, int budget) const {
    if (id < 0 || id >= v.n_vocab()) return false;
    if (v.is_eog(id)) return is_complete();
    const std::string& p = v.piece(id);
    if (p.empty()) return false;
    State cur = stacks_, next;
    for (char c : p) {
        advance(cur, static_cast<unsigned char>(c), next);
        if (next.empty()) return false;
        cur.swap(next);
    }
    return budget < 0 || state_min(cur) <= uint32_t(budget);
}

bool GrammarMatcher::accept_token(const GrammarVocab& v, int32_t id) {
    if (id < 0 || id >= v.n_vocab()) return false;
    if (v.is_eog(id)) return is_complete();
    const std::string& p = v.piece(id);
    return !p.empty() && accept(p);
}

std::string GrammarMatcher::key_of(const State& st) {
    std::string k;
    for (const Stack& s : st) {
        k.append(reinterpret_cast<const char*>(s.data()), s.size() * sizeof(uint32_t));
        k.append("\xff\xff\xff\xfe", 4);  // no position is 0xfeffffff
    }
    return k;
}

std::string GrammarMatcher::key() const {
    return key_of(stacks_);
}

int32_t GrammarMatcher::intern(State&& st) {
    std::string k = key_of(st);
    auto it = dfa_ids_.find(k);
    if (it != dfa_ids_.end()) return it->second;
    const int32_t id = int32_t(dfa_.size());
    Node n;
    n.min = state_min(st);
    n.st = std::move(st);
    n.next.assign(256, -2);
    dfa_.push_back(std::move(n));
    dfa_ids_.emplace(std::move(k), id);
    return id;
}

int32_t GrammarMatcher::step(int32_t id, unsigned char b) {
    int32_t nx = dfa_[size_t(id)].next[b];
    if (nx != -2) return nx;
    State out;
    advance(dfa_[size_t(id)].st, b, out);
    nx = out.empty() ? -1 : intern(std::move(out));
    dfa_[size_t(id)].next[b] = nx;
    return nx;
}

void GrammarMatcher::walk(const GrammarVocab& v, uint32_t node, int32_t state, int budget,
                          std::vector<uint8_t>& allowed, size_t& count, uint32_t& worst) {
    const GrammarVocab::Node& nd = v.nodes_[node];
    for (uint32_t i = 0; i < nd.n_children; ++i) {
        const int32_t next = step(state, v.child_byte_[nd.first_child + i]);
        if (next < 0) continue;
        const uint32_t child = v.child_node_[nd.first_child + i];
        const GrammarVocab::Node& cn = v.nodes_[child];
        if (cn.n_tokens > 0) {
            const uint32_t m = dfa_[size_t(next)].min;
            if (budget < 0 || m <= uint32_t(budget)) {
                worst = std::max(worst, m);
                for (uint32_t t = 0; t < cn.n_tokens; ++t) {
                    allowed[size_t(v.node_tokens_[cn.first_token + t])] = 1;
                    ++count;
                }
            }
        }
        if (cn.n_children > 0) walk(v, child, next, budget, allowed, count, worst);
    }
}

size_t GrammarMatcher::fill_mask(const GrammarVocab& v, int budget, std::vector<uint8_t>& allowed) {
    const std::string k = use_cache_ ? key() : std::string();
    auto it = use_cache_ ? cache_.find(k) : cache_.end();
    // A cached mask computed without a budget holds when every allowed token leaves at
    // most `budget` bytes to finish.
    if (it != cache_.end() && (budget < 0 || it->second.worst_min <= uint32_t(budget))) {
        allowed = it->second.allowed;
        return it->second.count;
    }
    allowed.assign(size_t(v.n_vocab()), 0);
    size_t count = 0;
    uint32_t worst = 0;
    // Budget-free walk first when it may be cached; else the constrained one.
    const bool cacheable = use_cache_ && it == cache_.end();
    if (dfa_.size() > 20000) {  // bound the memory (1 KiB a state) of long generations
        dfa_.clear();
        dfa_ids_.clear();
    }
    const int32_t root = intern(State(stacks_));
    walk(v, 0, root, cacheable ? -1 : budget, allowed, count, worst);
    if (is_complete())
        for (int32_t id : v.eog()) {
            if (!allowed[size_t(id)]) ++count;
            allowed[size_t(id)] = 1;
        }
    if (cacheable) {
        if (cache_.size() >= 256) cache_.clear();
        CacheEntry& e = cache_[k];
        e.allowed = allowed;
        e.count = count;
        e.worst_min = worst;
        if (budget >= 0 && worst > uint32_t(budget)) {
            // Too tight for the free mask: redo it under the budget.
            allowed.assign(size_t(v.n_vocab()), 0);
            count = 0;
            worst = 0;
            walk(v, 0, root, budget, allowed, count, worst);
            if (is_complete())
                for (int32_t id : v.eog()) {
                    if (!allowed[size_t(id)]) ++count;
                    allowed[size_t(id)] = 1;
                }
        }
    }
    return count;
}

}  // namespace ragd
