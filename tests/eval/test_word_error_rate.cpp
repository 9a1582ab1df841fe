// Word error rate: edit distance over normalised words, against hand-counted cases.
#include <catch2/catch.hpp>

#include "apr/eval/word_error_rate.hpp"

using namespace apr::eval;

TEST_CASE("words are lower-cased and split at anything but letters and digits", "[wer]") {
  CHECK(normalized_words("  Turn ON the lights, please!") == std::vector<std::string>{"turn", "on", "the", "lights", "please"});
  CHECK(normalized_words("4 0-7") == std::vector<std::string>{"4", "0", "7"});
  CHECK(normalized_words("").empty());
}

TEST_CASE("substitutions, deletions and insertions each count once", "[wer]") {
  CHECK(word_errors("set a timer for five minutes", "Set a timer for five minutes.").errors == 0);
  const auto substitution = word_errors("call mom", "call bob");
  CHECK(substitution.errors == 1);
  CHECK(substitution.words == 2);
  CHECK(word_errors("one two three", "one three").errors == 1);         // deletion
  CHECK(word_errors("one two", "one two two three").errors == 2);       // two insertions
  CHECK(word_errors("a b c d", "x a c d y").errors == 3);               // insert x, delete b, insert y
  CHECK(word_errors("", "noise").errors == 1);
  CHECK(word_errors("", "").rate() == 0.0);
}

TEST_CASE("word errors add up over a set", "[wer]") {
  WordErrors total;
  total += word_errors("call mom", "call bob");
  total += word_errors("stop", "stop");
  CHECK(total.errors == 1);
  CHECK(total.words == 3);
  CHECK(total.rate() == Approx(1.0 / 3.0));
}
