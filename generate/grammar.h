// generate/grammar: a context-free grammar over bytes, a pushdown matcher for it, and the
// per-vocabulary precomputation that turns a matcher state into a mask of allowed tokens.
//
// A Grammar is a list of rules; a rule is a list of alternatives; an alternative is a
// sequence of symbols, each a byte class (a set of bytes) or a reference to a rule. All
// alternatives live in one flat array of symbols, each ended by an End symbol, so a
// position in the grammar is one 32-bit index.
//
// The matcher keeps a set of stacks (a nondeterministic pushdown automaton). A stack is the
// list of positions still to execute, innermost last; its top is always a byte class, or
// the stack is empty, which means the input so far is a complete sentence. Advancing by a
// byte keeps the stacks whose top class holds the byte, moves them past it and expands rule
// references until every top is a byte class again. A reference that is the last symbol of
// its alternative replaces the caller's frame (tail call), so right recursion like
// `chars := "" | char chars` runs in constant stack depth.
//
// finalize() checks the grammar: every rule reachable from the root must derive a finite
// string (recursion needs a base case) and no rule may reach itself without consuming a
// byte (left recursion). It then computes, for each position, the minimum number of bytes
// needed to finish from there; min_remaining() of a state is what termination control in
// the runner uses: a token is allowed only when the bytes left to finish after it fit in
// the tokens left (each later token can give at least one byte, since byte-level and
// byte-fallback vocabularies hold a token for every byte).
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ragd {

class Tokenizer;

class Grammar {
  public:
    using ByteSet = std::bitset<256>;
    struct Sym {
        enum Kind : uint8_t { End, Bytes, Rule } kind;
        uint32_t arg;  // Bytes: index of the byte set; Rule: rule id
    };
    static constexpr uint32_t kInfinite = 0xFFFFFFFFu;

    // Building. Rule ids are dense from 0; names appear in error messages.
    int add_rule(std::string name);
    void add_alt(int rule, const std::vector<Sym>& seq);
    Sym bytes(const ByteSet& set);
    Sym byte(unsigned char c);
    Sym range(unsigned char lo, unsigned char hi);
    static Sym ref(int rule) { return {Sym::Rule, uint32_t(rule)}; }
    // The bytes of s, one symbol each.
    std::vector<Sym> literal(std::string_view s);

    // Checks and precomputes (see above); throws ragd::Error(InvalidArgument) naming the
    // offending rule. Must be called once, before matching.
    void finalize(int root);

    int n_rules() const { return int(rules_.size()); }
    size_t n_symbols() const { return syms_.size(); }
    int root() const { return root_; }
    const std::string& rule_name(int r) const { return names_[size_t(r)]; }

  private:
    friend class GrammarMatcher;
    std::vector<Sym> syms_;                     // all alternatives, each ended by End
    std::vector<std::vector<uint32_t>> rules_;  // alternative start positions per rule
    std::vector<std::string> names_;
    std::vector<ByteSet> sets_;
    std::unordered_map<std::string, uint32_t> set_ids_;
    std::vector<uint32_t> rule_min_;  // min bytes a rule derives
    std::vector<uint32_t> pos_min_;   // min bytes from a position to the end of its alternative
    int root_ = -1;
    bool final_ = false;
};

// The vocabulary as bytes: each token's piece (what it adds to the text) in a trie, and
// which tokens end generation. Built once per model and shared by all matchers.
class GrammarVocab {
  public:
    explicit GrammarVocab(const Tokenizer& tok);
    // For tests: pieces by id ("" for tokens that add no text) and end-of-generation ids.
    GrammarVocab(std::vector<std::string> pieces, std::vector<int32_t> eog);

    int32_t n_vocab() const { return int32_t(pieces_.size()); }
    const std::string& piece(int32_t id) const { return pieces_[size_t(id)]; }
    bool is_eog(int32_t id) const { return eog_flag_[size_t(id)] != 0; }
    const std::vector<int32_t>& eog() const { return eog_; }
    size_t trie_nodes() const { return nodes_.size(); }

  private:
    friend class GrammarMatcher;
    struct Node {
        uint32_t first_child = 0, n_children = 0;  // into child_byte_/child_node_
        uint32_t first_token = 0, n_tokens = 0;    // into node_tokens_: tokens ending here
    };
    std::vector<std::string> pieces_;
    std::vector<int32_t> eog_;
    std::vector<uint8_t> eog_flag_;
    std::vector<Node> nodes_;  // 0 is the root
    std::vector<uint8_t> child_byte_;
    std::vector<uint32_t> child_node_;
    std::vector<int32_t> node_tokens_;
    void build();
};

// The state of one generation under a grammar.
class GrammarMatcher {
  public:
    explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);

    // Feeds bytes; false (and the state unchanged) when the grammar rejects them.
    bool accept(std::string_view bytes);
    // Whether bytes could be fed, without changing the state.
    bool can_accept(std::string_view bytes) const;
    bool is_complete() const;        // the input so far is a whole sentence
    bool is_terminal() const;        // complete, and no byte can follow
    uint32_t min_remaining() const;  // bytes still needed to complete (0 when complete)

    // Token-level checks. budget: the tokens that may follow this one (-1: no limit); a
    // token is allowed only when the bytes needed to complete after it are at most budget.
    // End-of-generation tokens are allowed exactly when the state is complete.
    bool allows_token(const GrammarVocab& vocab, int32_t id, int budget) const;
    // allowed[id] = 1 or 0 for the whole vocabulary (resized to n_vocab); returns the
    // number allowed. Walks the vocabulary trie with the current stacks, pruning every
    // prefix no stack accepts. Masks are cached by state, so a state met again (inside a
    // string, say) costs a copy.
    size_t fill_mask(const GrammarVocab& vocab, int budget, std::vector<uint8_t>& allowed);
    bool accept_token(const GrammarVocab& vocab, int32_t id);

    size_t n_stacks() const { return stacks_.size(); }
    void set_mask_cache(bool on) { use_cache_ = on; }  // on by default (benchmarks)
    static constexpr size_t kMaxDepth = 512;           // frames per stack; deeper ones are dropped

  private:
    using Stack = std::vector<uint32_t>;
    using State = std::vector<Stack>;
    std::shared_ptr<const Grammar> g_;
    State stacks_;
    struct CacheEntry {
        std::vector<uint8_t> allowed;
        size_t count = 0;
        uint32_t worst_min = 0;  // the largest min_remaining after an allowed token
    };
    std::unordered_map<std::string, CacheEntry> cache_;
    bool use_cache_ = true;

    void expand(Stack s, State& out) const;
    void advance(const State& in, unsigned char b, State& out) const;
    uint32_t stack_min(const Stack& s) const;
    uint32_t state_min(const State& st) const;
    static void normalize(State& st);
    std::string key() const;
    // The states met while walking the trie, interned, with their transitions computed
    // lazily: inside a string most bytes lead back to the same state, so a walk over the
    // whole vocabulary advances the stacks once per (state, byte), not once per trie node.
    struct Node {
        State st;
        uint32_t min = 0;
        std::vector<int32_t> next;  // 256 entries: -2 unknown, -1 rejected, else a state
    };
    std::vector<Node> dfa_;
    std::unordered_map<std::string, int32_t> dfa_ids_;
    static std::string key_of(const State& st);
    int32_t intern(State&& st);
    int32_t step(int32_t id, unsigned char b);
    void walk(const GrammarVocab& v, uint32_t node, int32_t state, int budget,
              std::vector<uint8_t>& allowed, size_t& count, uint32_t& worst);
};

}  // namespace ragd
