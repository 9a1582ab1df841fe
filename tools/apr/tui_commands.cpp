// apr tui: an ncurses browser of a model file: the tensor list (name, dtype, shape) beside the
// selected tensor's statistics and a histogram of its values; Tab shows the metadata instead.
// --keys replays a key sequence without a keyboard (tests), --json prints the histogram only.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "model_file.hpp"

// last: curses defines macros (refresh, erase, …) that must not reach the other headers
#include <curses.h>

namespace apr::cli {
namespace {

/// Counts of finite values in `bins` equal-width bins over [min, max].
struct Histogram {
  double min = 0, max = 0;
  std::vector<size_t> counts;
};

Histogram histogram_of(std::span<const float> values, size_t bins) {
  Histogram h;
  h.counts.assign(bins, 0);
  bool any = false;
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    h.min = any ? std::min<double>(h.min, v) : v;
    h.max = any ? std::max<double>(h.max, v) : v;
    any = true;
  }
  const double width = h.max > h.min ? (h.max - h.min) / static_cast<double>(bins) : 1.0;
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    h.counts[std::min(bins - 1, static_cast<size_t>((v - h.min) / width))] += 1;
  }
  return h;
}

/// The browser's state and drawing.
class Browser {
 public:
  explicit Browser(const format::TensorFile& file) : file_(file) {
    for (const auto& [key, value] : file.metadata().items()) {
      if (value.is_null()) continue;
      std::string text = value.is_string() ? value.get<std::string>() : value.dump();
      std::replace(text.begin(), text.end(), '\n', ' ');
      metadata_.push_back(key + ": " + text);
    }
  }

  /// Applies one key; false when it quits.
  bool press(int key) {
    const size_t count = showing_metadata_ ? metadata_.size() : file_.tensors().size();
    const size_t page = static_cast<size_t>(std::max(1, LINES - 3));
    switch (key) {
      case 'q': case 27: return false;
      case '\t': showing_metadata_ = !showing_metadata_; selected_ = 0; break;
      case KEY_DOWN: case 'j': if (selected_ + 1 < count) ++selected_; break;
      case KEY_UP: case 'k': if (selected_ > 0) --selected_; break;
      case KEY_NPAGE: case ' ': selected_ = std::min(count == 0 ? 0 : count - 1, selected_ + page); break;
      case KEY_PPAGE: selected_ = selected_ > page ? selected_ - page : 0; break;
      case KEY_HOME: case 'g': selected_ = 0; break;
      case KEY_END: case 'G': selected_ = count == 0 ? 0 : count - 1; break;
      default: break;
    }
    return true;
  }

  /// Redraws the whole screen.
  void draw() {
    erase();
    const int rows = LINES - 2;
    const int list_width = std::max(20, COLS / 2);
    mvprintw(0, 0, "%s  [%s, %zu tensors]  Tab: %s  j/k, PgUp/PgDn: move  q: quit", file_.path().c_str(), std::string(file_.format()).c_str(),
             file_.tensors().size(), showing_metadata_ ? "tensors" : "metadata");
    const size_t first = selected_ >= static_cast<size_t>(rows) ? selected_ - static_cast<size_t>(rows) + 1 : 0;
    if (showing_metadata_) {
      for (int row = 0; row < rows && first + static_cast<size_t>(row) < metadata_.size(); ++row) {
        const size_t i = first + static_cast<size_t>(row);
        if (i == selected_) attron(A_REVERSE);
        mvprintw(row + 1, 0, "%.*s", COLS, metadata_[i].c_str());
        if (i == selected_) attroff(A_REVERSE);
      }
      refresh();
      return;
    }
    const auto tensors = file_.tensors();
    for (int row = 0; row < rows && first + static_cast<size_t>(row) < tensors.size(); ++row) {
      const size_t i = first + static_cast<size_t>(row);
      const std::string line = fmt::format("{} {} {}", tensors[i].name, to_string(tensors[i].dtype), to_string(tensors[i].shape));
      if (i == selected_) attron(A_REVERSE);
      mvprintw(row + 1, 0, "%.*s", list_width - 1, line.c_str());
      if (i == selected_) attroff(A_REVERSE);
    }
    if (selected_ < tensors.size()) draw_tensor(tensors[selected_], list_width + 1, COLS - list_width - 1, rows);
    refresh();
  }

 private:
  void draw_tensor(const TensorView& tensor, int x, int width, int rows) {
    mvprintw(1, x, "%.*s", width, std::string(tensor.name).c_str());
    mvprintw(2, x, "%s %s, %zu bytes", std::string(to_string(tensor.dtype)).c_str(), to_string(tensor.shape).c_str(), tensor.bytes.size());
    auto values = format::tensor_to_f32(tensor);
    if (!values) {
      mvprintw(4, x, "%.*s", width, values.error().message.c_str());
      return;
    }
    const Stats s = value_stats(*values);
    mvprintw(3, x, "mean %+.4g std %.4g", s.mean, s.std);
    mvprintw(4, x, "min %+.4g max %+.4g", s.min, s.max);
    mvprintw(5, x, "NaN %zu Inf %zu zeros %zu", s.nan, s.inf, s.zeros);
    const int bins = std::max(1, std::min(rows - 7, 24));
    const Histogram h = histogram_of(*values, static_cast<size_t>(bins));
    const size_t most = std::max<size_t>(1, *std::max_element(h.counts.begin(), h.counts.end()));
    const int bar_width = std::max(1, width - 12);
    for (int b = 0; b < bins; ++b) {
      const double low = h.min + (h.max - h.min) * b / bins;
      const int length = static_cast<int>(static_cast<double>(h.counts[static_cast<size_t>(b)]) * bar_width / static_cast<double>(most));
      mvprintw(7 + b, x, "%+10.3g %s", low, std::string(static_cast<size_t>(length), '#').c_str());
    }
  }

  const format::TensorFile& file_;
  std::vector<std::string> metadata_;
  size_t selected_ = 0;
  bool showing_metadata_ = false;
};

/// The key codes of a --keys script: characters as themselves, \t Tab, and the words
/// <down> <up> <pgdn> <pgup> <home> <end>.
std::vector<int> script_keys(const std::string& script) {
  static const std::pair<const char*, int> names[] = {{"<down>", KEY_DOWN}, {"<up>", KEY_UP}, {"<pgdn>", KEY_NPAGE}, {"<pgup>", KEY_PPAGE},
                                                      {"<home>", KEY_HOME}, {"<end>", KEY_END}, {"<tab>", '\t'}};
  std::vector<int> keys;
  for (size_t i = 0; i < script.size();) {
    bool named = false;
    for (const auto& [name, code] : names) {
      if (script.compare(i, std::strlen(name), name) == 0) {
        keys.push_back(code);
        i += std::strlen(name);
        named = true;
        break;
      }
    }
    if (!named) keys.push_back(static_cast<unsigned char>(script[i++]));
  }
  return keys;
}

}  // namespace

void register_tui_commands(CLI::App& app, Registry& registry) {
  struct Flags {
    std::string path, keys, tensor;
    size_t bins = 20;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* tui = app.add_subcommand("tui", "Browse a model file's tensors and metadata in the terminal, with a histogram of the selected tensor");
  tui->add_option("file", flags->path, "APR, SafeTensors (or index), GGUF file or model folder")->required();
  tui->add_option("--keys", flags->keys, "replay these keys instead of reading the keyboard, then quit (e.g. 'jj<tab>q')");
  tui->add_option("--tensor", flags->tensor, "--json: the tensor whose histogram is printed (default: the first)");
  tui->add_option("--bins", flags->bins, "--json: histogram bins")->check(CLI::Range(1, 1000));
  tui->add_flag("--json", flags->json, "print the selected tensor's statistics and histogram as JSON instead of drawing");
  registry.add(tui, [flags] {
    auto file = open_any(flags->path);
    if (!file) return report(file.error());
    if (flags->json) {
      const auto tensors = (*file)->tensors();
      const TensorView* tensor = flags->tensor.empty() ? (tensors.empty() ? nullptr : &tensors[0]) : (*file)->find(flags->tensor);
      if (tensor == nullptr) return report(make_error(ErrorCode::invalid_argument, "--tensor {}: no such tensor in {}", flags->tensor, flags->path));
      auto values = format::tensor_to_f32(*tensor);
      if (!values) return report(values.error());
      const Stats s = value_stats(*values);
      const Histogram h = histogram_of(*values, flags->bins);
      print_json({{"tensor", std::string(tensor->name)}, {"dtype", std::string(to_string(tensor->dtype))},
                  {"shape", std::vector<uint64_t>(tensor->shape.dims().begin(), tensor->shape.dims().end())},
                  {"stats", {{"mean", s.mean}, {"std", s.std}, {"min", s.min}, {"max", s.max}, {"nan", s.nan}, {"inf", s.inf}, {"zeros", s.zeros}}},
                  {"histogram", {{"min", h.min}, {"max", h.max}, {"counts", h.counts}}}});
      return int{kOk};
    }
    const bool scripted = !flags->keys.empty();
    if (!scripted && (::isatty(STDIN_FILENO) != 1 || ::isatty(STDOUT_FILENO) != 1)) {
      return report(make_error(ErrorCode::invalid_argument, "apr tui needs a terminal (or --keys to replay keys, or --json)"));
    }
    const char* term = std::getenv("TERM");
    SCREEN* screen = newterm(term != nullptr && *term != '\0' ? term : "xterm", stdout, stdin);
    if (screen == nullptr) return report(make_error(ErrorCode::io, "cannot start the terminal UI (TERM={})", term != nullptr ? term : ""));
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    Browser browser(**file);
    browser.draw();
    if (scripted) {
      for (int key : script_keys(flags->keys)) {
        if (!browser.press(key)) break;
        browser.draw();
      }
    } else {
      while (browser.press(getch())) browser.draw();
    }
    endwin();
    delscreen(screen);
    return int{kOk};
  });
}

}  // namespace apr::cli
