;;; emacs_face_dump.el --- used by test_editors.py  -*- lexical-binding: t; -*-
;; emacs --batch -Q -l attn-mode.el -l emacs_face_dump.el FILE OUT
;; Writes the face under every character of FILE, opened in the mode that
;; auto-mode-alist picks, to OUT: one line per line of FILE, the faces
;; separated by spaces ("-" where there is none); the last line names the mode.
(let* ((file (nth 0 command-line-args-left))
       (out (nth 1 command-line-args-left))
       (lines '()))
  (setq command-line-args-left nil)
  (with-current-buffer (find-file-noselect file)
    (font-lock-ensure)
    (goto-char (point-min))
    (while (not (eobp))
      (let ((faces '()))
        (while (not (eolp))
          (let ((face (get-text-property (point) 'face)))
            (push (format "%s" (or (if (consp face) (car face) face) "-")) faces))
          (forward-char 1))
        (push (mapconcat #'identity (nreverse faces) " ") lines))
      (forward-line 1))
    (push (format "mode=%s" major-mode) lines))
  (with-temp-file out
    (insert (mapconcat #'identity (nreverse lines) "\n"))))
