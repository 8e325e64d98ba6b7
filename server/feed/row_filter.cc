#include "server/feed/row_filter.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/core/error_reason.h"
#include "server/core/proto_time.h"

namespace walfeed {
namespace {

// SQL's three-valued logic.
enum class Truth { kFalse, kTrue, kUnknown };

Truth Not(Truth t) {
  if (t == Truth::kUnknown) return t;
  return t == Truth::kTrue ? Truth::kFalse : Truth::kTrue;
}

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };

struct Literal {
  enum class Kind { kNumber, kString, kBool };
  Kind kind = Kind::kString;
  size_t at = 0;  // 1-based character
  std::string text;
  long double number = 0;
  bool boolean = false;
  // A string literal that reads as a timestamp, for timestamp columns.
  bool is_time = false;
  absl::Time time;
};

// Reads 'YYYY-MM-DD HH:MM:SS[.f][zone]' (or with a T), zone Z, +HH or +HH:MM (UTC when none).
bool ParseTimestamp(absl::string_view text, absl::Time* out) {
  std::string normalized(text);
  if (normalized.size() > 10 && normalized[10] == 'T') normalized[10] = ' ';
  for (const char* format : {"%Y-%m-%d %H:%M:%E*S%Ez", "%Y-%m-%d %H:%M:%E*S%z",
                             "%Y-%m-%d %H:%M:%E*SZ", "%Y-%m-%d %H:%M:%E*S"}) {
    std::string error;
    if (absl::ParseTime(format, normalized, absl::UTCTimeZone(), out, &error)) return true;
  }
  // +HH alone, as PostgreSQL prints it.
  if (normalized.size() > 3 &&
      (normalized[normalized.size() - 3] == '+' || normalized[normalized.size() - 3] == '-')) {
    std::string error;
    return absl::ParseTime("%Y-%m-%d %H:%M:%E*S%Ez", normalized + ":00", absl::UTCTimeZone(), out,
                           &error);
  }
  return false;
}

absl::Status Mistake(size_t at, absl::string_view what) {
  return WithReason(
      absl::InvalidArgumentError(absl::StrCat("where: ", what, " (at character ", at, ")")),
      reason::kFilterInvalid);
}

struct Token {
  enum class Kind { kWord, kQuoted, kNumber, kString, kSymbol, kEnd };
  Kind kind = Kind::kEnd;
  std::string text;  // words upper-cased copies are compared separately
  size_t at = 0;
};

absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view in) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < in.size()) {
    const char c = in[i];
    const size_t at = i + 1;
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < in.size() && (absl::ascii_isalnum(static_cast<unsigned char>(in[j])) ||
                               in[j] == '_' || in[j] == '$')) {
        ++j;
      }
      tokens.push_back({Token::Kind::kWord, std::string(in.substr(i, j - i)), at});
      i = j;
    } else if (absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.' ||
               ((c == '-' || c == '+') && i + 1 < in.size() &&
                (absl::ascii_isdigit(static_cast<unsigned char>(in[i + 1])) || in[i + 1] == '.'))) {
      size_t j = i + 1;
      while (j < in.size() &&
             (absl::ascii_isalnum(static_cast<unsigned char>(in[j])) || in[j] == '.' ||
              ((in[j] == '-' || in[j] == '+') && (in[j - 1] == 'e' || in[j - 1] == 'E')))) {
        ++j;
      }
      tokens.push_back({Token::Kind::kNumber, std::string(in.substr(i, j - i)), at});
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string text;
      size_t j = i + 1;
      bool closed = false;
      while (j < in.size()) {
        if (in[j] == c) {
          if (j + 1 < in.size() && in[j + 1] == c) {  // doubled: one quote
            text.push_back(c);
            j += 2;
            continue;
          }
          closed = true;
          ++j;
          break;
        }
        text.push_back(in[j++]);
      }
      if (!closed)
        return Mistake(at, c == '\'' ? "a string is not closed" : "a name is not closed");
      if (c == '"' && text.empty()) return Mistake(at, "a quoted name is empty");
      tokens.push_back({c == '\'' ? Token::Kind::kString : Token::Kind::kQuoted, text, at});
      i = j;
    } else {
      static constexpr absl::string_view kTwo[] = {"<=", ">=", "<>", "!="};
      std::string symbol(1, c);
      for (absl::string_view two : kTwo) {
        if (in.substr(i, 2) == two) symbol = std::string(two);
      }
      if (symbol.size() == 1 && !absl::StrContains("=<>(),", c)) {
        return Mistake(at, absl::StrCat("'", absl::CHexEscape(symbol), "' is not understood"));
      }
      tokens.push_back({Token::Kind::kSymbol, symbol, at});
      i += symbol.size();
    }
  }
  tokens.push_back({Token::Kind::kEnd, "", in.size() + 1});
  return tokens;
}

}  // namespace

struct RowFilter::Node {
  enum class Kind { kAnd, kOr, kNot, kCompare, kIn, kIsNull };
  Kind kind = Kind::kCompare;
  std::vector<std::unique_ptr<Node>> children;  // kAnd, kOr, kNot
  std::string column;                           // the tests
  size_t at = 0;                                // where the column is named
  Op op = Op::kEq;                              // kCompare
  std::vector<Literal> literals;                // kCompare (one), kIn (several)
  bool negated = false;                         // NOT IN, IS NOT NULL
};

namespace {

using Node = RowFilter::Node;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<std::unique_ptr<Node>> ParseAll() {
    if (Peek().kind == Token::Kind::kEnd) return Mistake(Peek().at, "the condition is empty");
    absl::StatusOr<std::unique_ptr<Node>> root = ParseOr();
    if (!root.ok()) return root;
    if (Peek().kind != Token::Kind::kEnd) {
      return Mistake(Peek().at, absl::StrCat("'", Peek().text, "' was not expected here"));
    }
    return root;
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Take() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool IsWord(absl::string_view keyword) const {
    return Peek().kind == Token::Kind::kWord && absl::EqualsIgnoreCase(Peek().text, keyword);
  }
  bool IsSymbol(absl::string_view symbol) const {
    return Peek().kind == Token::Kind::kSymbol && Peek().text == symbol;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseOr() { return ParseChain(Node::Kind::kOr, "OR"); }
  absl::StatusOr<std::unique_ptr<Node>> ParseAnd() { return ParseChain(Node::Kind::kAnd, "AND"); }

  absl::StatusOr<std::unique_ptr<Node>> ParseChain(Node::Kind kind, absl::string_view keyword) {
    absl::StatusOr<std::unique_ptr<Node>> first =
        kind == Node::Kind::kOr ? ParseAnd() : ParseTerm();
    if (!first.ok() || !IsWord(keyword)) return first;
    auto chain = std::make_unique<Node>();
    chain->kind = kind;
    chain->children.push_back(*std::move(first));
    while (IsWord(keyword)) {
      Take();
      absl::StatusOr<std::unique_ptr<Node>> next =
          kind == Node::Kind::kOr ? ParseAnd() : ParseTerm();
      if (!next.ok()) return next;
      chain->children.push_back(*std::move(next));
    }
    return chain;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseTerm() {
    if (IsWord("NOT")) {
      Take();
      absl::StatusOr<std::unique_ptr<Node>> inner = ParseTerm();
      if (!inner.ok()) return inner;
      auto negation = std::make_unique<Node>();
      negation->kind = Node::Kind::kNot;
      negation->children.push_back(*std::move(inner));
      return negation;
    }
    if (IsSymbol("(")) {
      const size_t at = Take().at;
      absl::StatusOr<std::unique_ptr<Node>> inner = ParseOr();
      if (!inner.ok()) return inner;
      if (!IsSymbol(")")) return Mistake(Peek().at, absl::StrCat("')' for the '(' at ", at));
      Take();
      return inner;
    }
    return ParseTest();
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseTest() {
    const Token& name = Take();
    auto test = std::make_unique<Node>();
    test->at = name.at;
    if (name.kind == Token::Kind::kQuoted) {
      test->column = name.text;
    } else if (name.kind == Token::Kind::kWord && !Reserved(name.text)) {
      test->column = absl::AsciiStrToLower(name.text);
    } else {
      return Mistake(name.at,
                     name.kind == Token::Kind::kEnd
                         ? "a column name is missing at the end"
                         : absl::StrCat("a column name was expected, not '", name.text, "'"));
    }
    if (IsWord("IS")) {
      Take();
      test->kind = Node::Kind::kIsNull;
      if (IsWord("NOT")) {
        Take();
        test->negated = true;
      }
      if (!IsWord("NULL")) return Mistake(Peek().at, "IS must be followed by NULL or NOT NULL");
      Take();
      return test;
    }
    if (IsWord("NOT") || IsWord("IN")) {
      test->negated = IsWord("NOT");
      if (test->negated) Take();
      if (!IsWord("IN")) return Mistake(Peek().at, "NOT here must be followed by IN");
      Take();
      test->kind = Node::Kind::kIn;
      if (!IsSymbol("(")) return Mistake(Peek().at, "IN needs a list in parentheses");
      Take();
      do {
        absl::StatusOr<Literal> literal = ParseLiteral();
        if (!literal.ok()) return literal.status();
        test->literals.push_back(*std::move(literal));
      } while (IsSymbol(",") && (Take(), true));
      if (!IsSymbol(")")) return Mistake(Peek().at, "the IN list needs ',' or ')' here");
      Take();
      return test;
    }
    static const std::pair<absl::string_view, Op> kOps[] = {
        {"=", Op::kEq},  {"!=", Op::kNe}, {"<>", Op::kNe}, {"<", Op::kLt},
        {"<=", Op::kLe}, {">", Op::kGt},  {">=", Op::kGe}};
    for (const auto& [symbol, op] : kOps) {
      if (!IsSymbol(symbol)) continue;
      Take();
      test->op = op;
      absl::StatusOr<Literal> literal = ParseLiteral();
      if (!literal.ok()) return literal.status();
      test->literals.push_back(*std::move(literal));
      return test;
    }
    return Mistake(Peek().at, absl::StrCat("after column '", test->column,
                                           "' a comparison, IN or IS [NOT] NULL was expected"));
  }

  absl::StatusOr<Literal> ParseLiteral() {
    const Token& token = Take();
    Literal literal;
    literal.at = token.at;
    literal.text = token.text;
    if (token.kind == Token::Kind::kNumber) {
      char* end = nullptr;
      literal.number = std::strtold(token.text.c_str(), &end);
      if (end == token.text.c_str() || *end != '\0') {
        return Mistake(token.at, absl::StrCat("'", token.text, "' is not a number"));
      }
      literal.kind = Literal::Kind::kNumber;
    } else if (token.kind == Token::Kind::kString) {
      literal.kind = Literal::Kind::kString;
      literal.is_time = ParseTimestamp(token.text, &literal.time);
    } else if (token.kind == Token::Kind::kWord && (absl::EqualsIgnoreCase(token.text, "TRUE") ||
                                                    absl::EqualsIgnoreCase(token.text, "FALSE"))) {
      literal.kind = Literal::Kind::kBool;
      literal.boolean = absl::EqualsIgnoreCase(token.text, "TRUE");
    } else if (token.kind == Token::Kind::kWord && absl::EqualsIgnoreCase(token.text, "NULL")) {
      return Mistake(token.at, "compare with NULL by IS NULL or IS NOT NULL");
    } else {
      return Mistake(token.at, token.kind == Token::Kind::kEnd
                                   ? "a value is missing at the end"
                                   : absl::StrCat("a value (a number, a 'string', TRUE or FALSE) "
                                                  "was expected, not '",
                                                  token.text, "'"));
    }
    return literal;
  }

  static bool Reserved(absl::string_view word) {
    for (absl::string_view keyword : {"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"}) {
      if (absl::EqualsIgnoreCase(word, keyword)) return true;
    }
    return false;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

template <typename T>
Truth Compare(const T& a, const T& b, Op op) {
  bool result = false;
  switch (op) {
    case Op::kEq:
      result = a == b;
      break;
    case Op::kNe:
      result = a != b;
      break;
    case Op::kLt:
      result = a < b;
      break;
    case Op::kLe:
      result = a <= b;
      break;
    case Op::kGt:
      result = a > b;
      break;
    case Op::kGe:
      result = a >= b;
      break;
  }
  return result ? Truth::kTrue : Truth::kFalse;
}

// One image of a row, judged: whether a value the condition needs was not there to judge.
struct Judgement {
  Truth truth = Truth::kFalse;
  bool incomplete = false;
};

class Evaluator {
 public:
  // `whole_row`: the image holds every column of its table, so a column it lacks is a mistake in
  // the condition (a key or a partial image cannot tell).
  Evaluator(const google::protobuf::RepeatedPtrField<v1::Column>& columns, bool whole_row,
            const v1::Change& change)
      : columns_(columns), whole_row_(whole_row), change_(change) {}

  absl::StatusOr<Truth> Evaluate(const Node& node) {
    switch (node.kind) {
      case Node::Kind::kAnd:
      case Node::Kind::kOr: {
        const bool is_and = node.kind == Node::Kind::kAnd;
        Truth result = is_and ? Truth::kTrue : Truth::kFalse;
        for (const std::unique_ptr<Node>& child : node.children) {
          absl::StatusOr<Truth> t = Evaluate(*child);
          if (!t.ok()) return t;
          if (*t == (is_and ? Truth::kFalse : Truth::kTrue)) return *t;
          if (*t == Truth::kUnknown) result = Truth::kUnknown;
        }
        return result;
      }
      case Node::Kind::kNot: {
        absl::StatusOr<Truth> t = Evaluate(*node.children.front());
        if (!t.ok()) return t;
        return Not(*t);
      }
      case Node::Kind::kIsNull: {
        const v1::Column* column = Find(node.column);
        if (column == nullptr) return Missing(node);
        const bool is_null = column->value_case() == v1::Column::kNull;
        return (is_null != node.negated) ? Truth::kTrue : Truth::kFalse;
      }
      case Node::Kind::kCompare:
      case Node::Kind::kIn: {
        const v1::Column* column = Find(node.column);
        if (column == nullptr) return Missing(node);
        Truth any = Truth::kFalse;
        for (const Literal& literal : node.literals) {
          absl::StatusOr<Truth> t =
              Test(*column, node, literal, node.kind == Node::Kind::kIn ? Op::kEq : node.op);
          if (!t.ok()) return t;
          if (*t == Truth::kTrue) {
            any = Truth::kTrue;
            break;
          }
          if (*t == Truth::kUnknown) any = Truth::kUnknown;
        }
        return node.kind == Node::Kind::kIn && node.negated ? Not(any) : any;
      }
    }
    return Truth::kUnknown;
  }

  bool incomplete() const { return incomplete_; }

 private:
  const v1::Column* Find(absl::string_view name) const {
    for (const v1::Column& column : columns_) {
      if (column.name() == name) return &column;
    }
    return nullptr;
  }

  // A column the image does not carry: a mistake in a whole row; otherwise unknown, and the
  // image cannot tell.
  absl::StatusOr<Truth> Missing(const Node& node) {
    if (whole_row_) {
      return Mistake(node.at, absl::StrCat("'", node.column, "' is not a column of ",
                                           change_.schema(), ".", change_.table(),
                                           " (a condition names columns of every table the "
                                           "stream reads: limit it with tables)"));
    }
    incomplete_ = true;
    return Truth::kUnknown;
  }

  // A value the change does not carry inline (unchanged TOAST, one sent out of line).
  Truth NotInline() {
    incomplete_ = true;
    return Truth::kUnknown;
  }

  absl::Status TypeMismatch(const Node& node, const Literal& literal, absl::string_view holds,
                            absl::string_view wants) const {
    return Mistake(literal.at, absl::StrCat("column '", node.column, "' holds ", holds,
                                            ": compare it with ", wants, ", not ",
                                            literal.kind == Literal::Kind::kString
                                                ? absl::StrCat("'", literal.text, "'")
                                                : literal.text));
  }

  absl::StatusOr<Truth> Test(const v1::Column& column, const Node& node, const Literal& literal,
                             Op op) {
    switch (column.value_case()) {
      case v1::Column::kNull:
        return Truth::kUnknown;
      case v1::Column::kUnchangedToast:
      case v1::Column::kLarge:
        return NotInline();
      case v1::Column::kInt:
      case v1::Column::kFloat:
      case v1::Column::kNumeric: {
        if (literal.kind != Literal::Kind::kNumber) {
          return TypeMismatch(node, literal, "numbers", "a number");
        }
        long double value = 0;
        if (column.value_case() == v1::Column::kInt) {
          value = static_cast<long double>(column.int_());
        } else if (column.value_case() == v1::Column::kFloat) {
          value = column.float_();
        } else {
          value = std::strtold(column.numeric().c_str(), nullptr);
        }
        return Compare(value, literal.number, op);
      }
      case v1::Column::kBool:
        if (literal.kind != Literal::Kind::kBool) {
          return TypeMismatch(node, literal, "booleans", "TRUE or FALSE");
        }
        return Compare(column.bool_(), literal.boolean, op);
      case v1::Column::kTimestamp:
        if (!literal.is_time) {
          return TypeMismatch(node, literal, "timestamps",
                              "a 'YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]' string");
        }
        return Compare(FromProtoTimestamp(column.timestamp()), literal.time, op);
      case v1::Column::kText:
      case v1::Column::kJson:
      case v1::Column::kUuid:
      case v1::Column::kDate:
      case v1::Column::kRawText: {
        if (literal.kind != Literal::Kind::kString) {
          return TypeMismatch(node, literal, "text", "a 'string'");
        }
        const std::string& text = column.value_case() == v1::Column::kText   ? column.text()
                                  : column.value_case() == v1::Column::kJson ? column.json()
                                  : column.value_case() == v1::Column::kUuid ? column.uuid()
                                  : column.value_case() == v1::Column::kDate ? column.date()
                                                                             : column.raw_text();
        return Compare(absl::string_view(text), absl::string_view(literal.text), op);
      }
      default:
        return Mistake(literal.at, absl::StrCat("column '", node.column,
                                                "' holds values a condition cannot compare"));
    }
  }

  const google::protobuf::RepeatedPtrField<v1::Column>& columns_;
  const bool whole_row_;
  const v1::Change& change_;
  bool incomplete_ = false;
};

absl::StatusOr<Judgement> JudgeImage(const Node& root, const v1::Change& change,
                                     const google::protobuf::RepeatedPtrField<v1::Column>& image,
                                     bool whole_row) {
  Evaluator evaluator(image, whole_row, change);
  absl::StatusOr<Truth> truth = evaluator.Evaluate(root);
  if (!truth.ok()) return truth.status();
  return Judgement{*truth, evaluator.incomplete()};
}

}  // namespace

absl::StatusOr<RowFilter> RowFilter::Parse(absl::string_view text) {
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(text);
  if (!tokens.ok()) return tokens.status();
  Parser parser(*std::move(tokens));
  absl::StatusOr<std::unique_ptr<Node>> root = parser.ParseAll();
  if (!root.ok()) return root.status();
  return RowFilter(std::shared_ptr<const Node>(*std::move(root)));
}

absl::StatusOr<RowFilter::Verdict> RowFilter::Judge(const v1::Change& change) const {
  switch (change.op()) {
    case v1::Change::INSERT:
    case v1::Change::READ: {
      absl::StatusOr<Judgement> after =
          JudgeImage(*root_, change, change.after(), /*whole_row=*/true);
      if (!after.ok()) return after.status();
      // A value not carried inline cannot be judged: delivered rather than lost.
      return after->truth == Truth::kTrue || after->incomplete ? Verdict::kDeliver : Verdict::kSkip;
    }
    case v1::Change::UPDATE: {
      absl::StatusOr<Judgement> after =
          JudgeImage(*root_, change, change.after(), /*whole_row=*/true);
      if (!after.ok()) return after.status();
      if (after->truth == Truth::kTrue) return Verdict::kDeliver;
      if (after->incomplete) return Verdict::kDeliver;  // cannot tell: deliver, as it is
      if (change.before_size() > 0) {
        absl::StatusOr<Judgement> before =
            JudgeImage(*root_, change, change.before(), /*whole_row=*/false);
        if (!before.ok()) return before.status();
        if (before->truth != Truth::kTrue && !before->incomplete) return Verdict::kSkip;
      }
      return Verdict::kLeft;
    }
    case v1::Change::DELETE: {
      // The old row when PostgreSQL sent it (REPLICA IDENTITY FULL), its key otherwise.
      absl::StatusOr<Judgement> key = JudgeImage(
          *root_, change, change.before_size() > 0 ? change.before() : change.key(), false);
      if (!key.ok()) return key.status();
      return key->truth == Truth::kTrue || key->incomplete ? Verdict::kDeliver : Verdict::kSkip;
    }
    default:
      return Verdict::kDeliver;  // TRUNCATE, MESSAGE
  }
}

}  // namespace walfeed
