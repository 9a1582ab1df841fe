// The JavaScript side of apr/text/js_host.hpp: regex splitting and NFC for a WebAssembly build
// of apr that has no PCRE2 or utf8proc (link with `emcc --js-library apr_host.js`).
mergeInto(LibraryManager.library, {
  $aprHost: {
    regexes: null,  // pattern -> RegExp, made on first use (library objects are serialized as source)
    // The bytes [pointer, pointer + size) of the module's memory as a string (copied: TextDecoder
    // does not read shared memory).
    text: function (pointer, size) {
      return new TextDecoder().decode(HEAPU8.slice(pointer, pointer + size));
    },
    // PCRE2 syntax as tokenizer.json files write it, in JavaScript's: the inline (?i:...) group
    // becomes character classes for engines without regexp modifiers.
    translate: function (pattern) {
      try {
        new RegExp(pattern, 'gu');
        return pattern;
      } catch (e) {
        return pattern.replace(/\(\?i:([^()]*)\)/g, function (_, body) {
          return '(?:' + body.replace(/[A-Za-z]/g, function (c) { return '[' + c.toLowerCase() + c.toUpperCase() + ']'; }) + ')';
        });
      }
    },
    regex: function (pointer, size) {
      const pattern = aprHost.text(pointer, size);
      if (!aprHost.regexes) aprHost.regexes = new Map();
      let compiled = aprHost.regexes.get(pattern);
      if (!compiled) {
        compiled = new RegExp(aprHost.translate(pattern), 'gu');
        aprHost.regexes.set(pattern, compiled);
      }
      return compiled;
    },
  },

  apr_host_regex_compile__deps: ['$aprHost'],
  apr_host_regex_compile: function (pattern, patternSize, message, capacity) {
    try {
      aprHost.regex(pattern, patternSize);
      return 0;
    } catch (e) {
      const text = String(e.message || e);
      stringToUTF8(text, message, capacity);
      return Math.max(1, lengthBytesUTF8(text));
    }
  },

  apr_host_regex_matches__deps: ['$aprHost'],
  apr_host_regex_matches: function (pattern, patternSize, text, textSize, offsets, maxMatches) {
    const regex = aprHost.regex(pattern, patternSize);
    const subject = aprHost.text(text, textSize);
    let unit = 0;  // UTF-16 index into subject
    let byte = 0;  // the UTF-8 offset of that index
    const advance = function (to) {
      while (unit < to) {
        const c = subject.charCodeAt(unit);
        if (c < 0x80) byte += 1;
        else if (c < 0x800) byte += 2;
        else if (c >= 0xd800 && c <= 0xdbff && unit + 1 < subject.length) { byte += 4; unit += 1; }
        else byte += 3;
        unit += 1;
      }
      return byte;
    };
    let found = 0;
    regex.lastIndex = 0;
    for (const match of subject.matchAll(regex)) {
      if (found >= maxMatches) break;
      const begin = advance(match.index);
      const end = advance(match.index + match[0].length);
      HEAPU32[(offsets >> 2) + 2 * found] = begin;
      HEAPU32[(offsets >> 2) + 2 * found + 1] = end;
      found += 1;
    }
    return found;
  },

  apr_host_nfc__deps: ['$aprHost'],
  apr_host_nfc: function (text, textSize, out, capacity) {
    const bytes = new TextEncoder().encode(aprHost.text(text, textSize).normalize('NFC'));
    if (bytes.length <= capacity) HEAPU8.set(bytes, out);
    return bytes.length;
  },
});
